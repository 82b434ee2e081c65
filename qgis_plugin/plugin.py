"""The plugin object QGIS loads: the Processing provider, a toolbar (the eo-ssl dialog and the parcel labelling
tool), and the same actions plus the backend diagnostics in the Raster menu."""

from __future__ import annotations

from qgis.core import QgsApplication, QgsMapLayerType, QgsWkbTypes
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import QAction, QApplication, QMessageBox

from . import settings
from .paths import ICON
from .provider import EoSslProvider

MENU = "&eo-ssl"
SETTINGS_PYTHON = settings.SETTINGS_PYTHON


class EoSslPlugin:
    def __init__(self, iface) -> None:
        self.iface = iface
        self.provider: EoSslProvider | None = None
        self.toolbar = None
        self.actions: list[QAction] = []
        self.menu_actions: list[QAction] = []
        self.dialog = None
        self.diagnostics_dialog = None
        self.label_panel = None

    # -- QGIS plugin interface -------------------------------------------------------------------------------
    def initProcessing(self) -> None:  # noqa: N802 - QGIS API
        """Also called by QGIS on its own when only Processing is needed (qgis_process, hasProcessingProvider)."""
        if self.provider is None:
            provider = EoSslProvider()
            # on failure (an eo_ssl provider is already there) the registry deletes the object: do not keep it
            if QgsApplication.processingRegistry().addProvider(provider):
                self.provider = provider

    def _action(self, text: str, name: str, tip: str, slot, icon: QIcon | None = None) -> QAction:
        action = QAction(icon or QIcon(str(ICON)), text, self.iface.mainWindow())
        action.setObjectName(name)
        action.setToolTip(tip)
        action.setStatusTip(tip)
        action.triggered.connect(slot)
        return action

    def initGui(self) -> None:  # noqa: N802 - QGIS API
        self.initProcessing()
        self.toolbar = self.iface.addToolBar("eo-ssl")
        self.toolbar.setObjectName("EoSslToolbar")
        main = self._action("eo-ssl: self-supervised land cover…", "EoSslDialogAction",
                            "eo-ssl: pre-train on Sentinel-1/2, fine-tune, predict and label parcels",
                            self.show_dialog)
        label_icon = QgsApplication.getThemeIcon("/mActionIdentify.svg")
        labelling = self._action("eo-ssl: parcel labelling tool", "EoSslLabelToolAction",
                                 "Label parcels by clicking them (keys 1..9 choose the class, N = next uncertain)",
                                 self.show_label_panel, label_icon)
        diagnostics = self._action("eo-ssl backend diagnostics", "EoSslDiagnostics",
                                   "eo-ssl: which Python, torch and device the training backend uses",
                                   self.show_diagnostics)
        self.actions = [main, labelling]
        self.menu_actions = [main, labelling, diagnostics]
        for action in self.actions:
            self.toolbar.addAction(action)
        for action in self.menu_actions:
            self.iface.addPluginToRasterMenu(MENU, action)

    def unload(self) -> None:
        for action in self.menu_actions:
            self.iface.removePluginRasterMenu(MENU, action)
            if self.toolbar is not None:
                self.toolbar.removeAction(action)
            action.deleteLater()
        self.actions, self.menu_actions = [], []
        if self.toolbar is not None:
            self.toolbar.deleteLater()
            self.toolbar = None
        if self.label_panel is not None:
            self.label_panel.set_active(False)
            self.iface.removeDockWidget(self.label_panel)
            self.label_panel.deleteLater()
            self.label_panel = None
        for attr in ("dialog", "diagnostics_dialog"):
            dlg = getattr(self, attr)
            if dlg is not None:
                if hasattr(dlg, "disconnect_project"):
                    dlg.disconnect_project()
                dlg.close()
                dlg.deleteLater()
                setattr(self, attr, None)
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None

    # -- actions ---------------------------------------------------------------------------------------------
    def backend_python_setting(self) -> str | None:
        return settings.backend_python_setting()

    def show_dialog(self) -> None:
        try:
            if self.dialog is None:
                from .dialog import EoSslDialog

                self.dialog = EoSslDialog(self.iface)
            self.dialog.refresh_layers()
            self.dialog.show()
            self.dialog.raise_()
            self.dialog.activateWindow()
        except Exception as exc:  # noqa: BLE001 - a plugin bug must never take QGIS down
            QMessageBox.critical(self.iface.mainWindow(), "eo-ssl", f"The eo-ssl dialog could not open: {exc}")

    def show_label_panel(self) -> None:
        from .maptool import ParcelLabelPanel

        if self.label_panel is None:
            self.label_panel = ParcelLabelPanel(self.iface)
            self.iface.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.label_panel)
        active = self.iface.activeLayer()
        if (active is not None and active.type() == QgsMapLayerType.VectorLayer
                and active.geometryType() == QgsWkbTypes.PolygonGeometry
                and self.label_panel.layer_combo.currentLayer() is not active):
            self.label_panel.layer_combo.setLayer(active)
        self.label_panel.show()
        self.label_panel.raise_()

    def show_diagnostics(self) -> None:
        """The diagnostics panel (the check runs at once, under a wait cursor: a few seconds)."""
        from .diagnostics import DiagnosticsDialog

        if self.diagnostics_dialog is None:
            self.diagnostics_dialog = DiagnosticsDialog(self.iface.mainWindow())
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            self.diagnostics_dialog.refresh(synchronous=True)
        except Exception as exc:  # noqa: BLE001 - never into QGIS
            QMessageBox.warning(self.iface.mainWindow(), "eo-ssl backend", f"The check failed: {exc}")
        finally:
            QApplication.restoreOverrideCursor()
        self.diagnostics_dialog.show()
        self.diagnostics_dialog.raise_()
