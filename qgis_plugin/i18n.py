"""Translation of the plugin's user strings.

Every user string of the plugin goes through :func:`tr`; constants defined before a translator can exist (menu
names, the algorithms' titles and help) are marked with ``QT_TRANSLATE_NOOP("@default", ...)`` and translated where
they are shown. ``scripts/update_translations.sh`` runs ``pylupdate5`` over ``qgis_plugin/`` and writes the
template ``qgis_plugin/i18n/eo_ssl.ts``; a translator's ``eo_ssl_<locale>.qm`` (made with ``lrelease``) placed in
that folder is loaded with the plugin for QGIS's user interface locale.

``pylupdate5`` files a bare ``tr("...")`` call under the context ``@default``: :func:`tr` looks strings up there, so
the template and the look-up agree.
"""

from __future__ import annotations

from pathlib import Path

from qgis.core import QgsSettings
from qgis.PyQt.QtCore import QCoreApplication, QLocale, QTranslator

CONTEXT = "@default"
I18N_DIR = Path(__file__).resolve().parent / "i18n"
_TRANSLATORS: list[QTranslator] = []


def tr(text: str) -> str:
    """``text`` in the user's language when a translation is installed, else ``text``."""
    return QCoreApplication.translate(CONTEXT, text)


def ui_locale() -> str:
    """QGIS's user-interface locale (``locale/userLocale``, e.g. ``de`` or ``pt_BR``)."""
    value = str(QgsSettings().value("locale/userLocale", "") or "")
    return value or QLocale.system().name()


def install_translator(locale: str | None = None) -> Path | None:
    """Load ``i18n/eo_ssl_<locale>.qm`` (or ``eo_ssl_<language>.qm``) when there is one; returns its path."""
    locale = locale or ui_locale()
    for name in (locale, locale.split("_")[0]):
        qm = I18N_DIR / f"eo_ssl_{name}.qm"
        if qm.is_file():
            translator = QTranslator()
            if translator.load(str(qm)):
                QCoreApplication.installTranslator(translator)
                _TRANSLATORS.append(translator)
                return qm
    return None


def remove_translators() -> None:
    while _TRANSLATORS:
        QCoreApplication.removeTranslator(_TRANSLATORS.pop())
