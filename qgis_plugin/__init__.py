"""eo-ssl QGIS plugin: the QGIS side (toolbar dialog, Processing provider, map tools, backend runner).

This package never imports ``torch``: the training backend runs in its own process (see docs/DESIGN.md).
"""

from __future__ import annotations


def classFactory(iface):  # noqa: N802 - the name QGIS looks for
    """Entry point QGIS calls to load the plugin."""
    from .i18n import install_translator
    from .plugin import EoSslPlugin

    install_translator()

    return EoSslPlugin(iface)
