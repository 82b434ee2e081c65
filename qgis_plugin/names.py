"""The names of the plugin's menus, buttons and settings page, in one place: the actions are made from them and every
hint that sends the user somewhere quotes them, so a hint always names a menu entry that exists.

Pure Python (no qgis): :mod:`.environment` and :mod:`.backend_runner` use these names in their hints too. The
strings are marked for translation (``QT_TRANSLATE_NOOP``, a no-op here that ``pylupdate5`` recognises) and
translated with :func:`qgis_plugin.i18n.tr` where they are shown.
"""

from __future__ import annotations


def QT_TRANSLATE_NOOP(context: str, text: str) -> str:  # noqa: N802 - the marker pylupdate5 looks for
    return text


#: The submenu of QGIS's Raster menu that holds the plugin's actions.
MENU = "eo-ssl"
DIALOG_ACTION = QT_TRANSLATE_NOOP("@default", "Self-supervised land cover…")
LABEL_TOOL_ACTION = QT_TRANSLATE_NOOP("@default", "Parcel labelling tool")
SIMILAR_ACTION = QT_TRANSLATE_NOOP("@default", "Find similar (feature raster)")
SETUP_ACTION = QT_TRANSLATE_NOOP("@default", "Set up the backend…")
DIAGNOSTICS_ACTION = QT_TRANSLATE_NOOP("@default", "Backend diagnostics")
MODEL_ACTION = QT_TRANSLATE_NOOP("@default", "Open the example model in the Model Designer")
OPTIONS_ACTION = QT_TRANSLATE_NOOP("@default", "Settings…")
#: The page's title in QGIS's Settings > Options dialog.
OPTIONS_PAGE = "eo-ssl"

CREATE_BUTTON = QT_TRANSLATE_NOOP("@default", "Create the backend environment")
EXISTING_BUTTON = QT_TRANSLATE_NOOP("@default", "Use an existing Python")

#: Where the user finds things, as QGIS shows them (English; the GUI translates the parts with tr()).
SETUP_MENU_PATH = f"Raster > {MENU} > {SETUP_ACTION}"
OPTIONS_PATH = f"Settings > Options… > {OPTIONS_PAGE}"
DIAGNOSTICS_MENU_PATH = f"Raster > {MENU} > {DIAGNOSTICS_ACTION}"
MODEL_MENU_PATH = f"Raster > {MENU} > {MODEL_ACTION}"

#: The hint for "there is no usable backend Python" (English: also printed by ``python -m qgis_plugin.environment``).
NO_BACKEND_HINT = (f"Open {SETUP_MENU_PATH} and click '{CREATE_BUTTON}' (the commands are shown before anything "
                   f"runs), or '{EXISTING_BUTTON}' to pick a Python that has the backend's packages. The backend "
                   f"Python can also be set in {OPTIONS_PATH}, or with the environment variable EO_SSL_PYTHON.")
