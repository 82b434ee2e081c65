"""The plugin object QGIS loads: toolbar action, menu entry and the Processing provider."""

from __future__ import annotations

from qgis.core import QgsApplication, QgsSettings
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import QAction, QApplication, QMessageBox

from .environment import check_backend
from .paths import ICON
from .provider import EoSslProvider

MENU = "&eo-ssl"
SETTINGS_PYTHON = "eo_ssl/backend_python"


class EoSslPlugin:
    def __init__(self, iface) -> None:
        self.iface = iface
        self.provider: EoSslProvider | None = None
        self.toolbar = None
        self.actions: list[QAction] = []

    # -- QGIS plugin interface -------------------------------------------------------------------------------
    def initProcessing(self) -> None:  # noqa: N802 - QGIS API
        """Also called by QGIS on its own when only Processing is needed (qgis_process, hasProcessingProvider)."""
        if self.provider is None:
            self.provider = EoSslProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:  # noqa: N802 - QGIS API
        self.initProcessing()
        icon = QIcon(str(ICON))
        self.toolbar = self.iface.addToolBar("eo-ssl")
        self.toolbar.setObjectName("EoSslToolbar")
        diagnostics = QAction(icon, "eo-ssl backend diagnostics", self.iface.mainWindow())
        diagnostics.setObjectName("EoSslDiagnostics")
        diagnostics.setToolTip("eo-ssl: which Python, torch and device the training backend uses")
        diagnostics.triggered.connect(self.show_diagnostics)
        self.toolbar.addAction(diagnostics)
        self.iface.addPluginToRasterMenu(MENU, diagnostics)
        self.actions.append(diagnostics)

    def unload(self) -> None:
        for action in self.actions:
            self.iface.removePluginRasterMenu(MENU, action)
            if self.toolbar is not None:
                self.toolbar.removeAction(action)
            action.deleteLater()
        self.actions = []
        if self.toolbar is not None:
            self.toolbar.deleteLater()
            self.toolbar = None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None

    # -- actions ---------------------------------------------------------------------------------------------
    def backend_python_setting(self) -> str | None:
        value = QgsSettings().value(SETTINGS_PYTHON, "", type=str)
        return value or None

    def show_diagnostics(self) -> None:
        QApplication.setOverrideCursor(Qt.WaitCursor)
        try:
            report = check_backend(self.backend_python_setting())
        finally:
            QApplication.restoreOverrideCursor()
        lines = [f"<b>{'OK' if report.ok else 'Not usable'}</b>: {report.summary()}"]
        if report.python:
            lines.append(f"Python: {report.python} (from {report.source})")
        if report.info.get("cuda_version"):
            lines.append(f"CUDA: {report.info['cuda_version']}")
        if report.hint:
            lines.append(report.hint)
        box = QMessageBox.information if report.ok else QMessageBox.warning
        box(self.iface.mainWindow(), "eo-ssl backend", "<br>".join(lines))
