"""The plugin object QGIS loads: the Processing provider, a toolbar (the eo-ssl dialog and the parcel labelling
tool), the Raster > eo-ssl menu (the same two, the first-run panel, the backend diagnostics, the example model in
the Model Designer, the settings), and the eo-ssl page of Settings > Options….

On the first load without any backend Python (a freshly installed zip) the first-run panel opens by itself; on
later loads without one, a message bar offers it."""

from __future__ import annotations

import contextlib
import os

from qgis.core import Qgis, QgsApplication, QgsMapLayerType, QgsWkbTypes
from qgis.PyQt.QtCore import Qt, QTimer
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import QAction, QMessageBox, QPushButton

from . import names, settings
from .i18n import tr
from .paths import ICON, LABEL_ICON
from .provider import EoSslProvider

MENU = "&" + names.MENU
SETTINGS_PYTHON = settings.SETTINGS_PYTHON
#: Set to 1 to keep the first-run panel from opening by itself (scripted QGIS sessions).
NO_FIRST_RUN_ENV = "EO_SSL_NO_FIRST_RUN"


class EoSslPlugin:
    def __init__(self, iface) -> None:
        self.iface = iface
        self.provider: EoSslProvider | None = None
        self.toolbar = None
        self.actions: list[QAction] = []
        self.menu_actions: list[QAction] = []
        self.dialog = None
        self.diagnostics_dialog = None
        self.setup_dialog = None
        self.label_panel = None
        self.options_factory = None
        self.modeler = None

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
        main = self._action(tr(names.DIALOG_ACTION), "EoSslDialogAction",
                            tr("eo-ssl: pre-train on Sentinel-1/2, fine-tune, predict and label parcels"),
                            self.show_dialog)
        labelling = self._action(tr(names.LABEL_TOOL_ACTION), "EoSslLabelToolAction",
                                 tr("eo-ssl: label parcels by clicking them (keys 1..9 choose the class, N = next "
                                    "uncertain parcel)"), self.show_label_panel, QIcon(str(LABEL_ICON)))
        setup = self._action(tr(names.SETUP_ACTION), "EoSslSetupAction",
                             tr("eo-ssl: create the backend environment, or choose an existing Python"),
                             self.show_setup)
        diagnostics = self._action(tr(names.DIAGNOSTICS_ACTION), "EoSslDiagnostics",
                                   tr("eo-ssl: which Python, torch and device the training backend uses"),
                                   self.show_diagnostics)
        model = self._action(tr(names.MODEL_ACTION), "EoSslModelAction",
                             tr("eo-ssl: open a copy of 'Predict land cover and label parcels' to adapt it"),
                             self.open_example_model, QgsApplication.getThemeIcon("/processingModel.svg"))
        options = self._action(tr(names.OPTIONS_ACTION), "EoSslOptionsAction",
                               tr("eo-ssl: backend Python, device and cache folder (Settings > Options > eo-ssl)"),
                               self.show_options, QgsApplication.getThemeIcon("/mActionOptions.svg"))
        similar = self._action(tr(names.SIMILAR_ACTION), "EoSslSimilarAction",
                               tr("eo-ssl: click a pixel or draw a polygon on a feature raster (an embedding) and "
                                  "map the similar pixels"), self.toggle_similar_tool,
                               QgsApplication.getThemeIcon("/mActionIdentify.svg"))
        similar.setCheckable(True)
        self.actions = [main, labelling, similar]
        self.menu_actions = [main, labelling, similar, setup, diagnostics, model, options]
        for action in self.actions:
            self.toolbar.addAction(action)
        for action in self.menu_actions:
            self.iface.addPluginToRasterMenu(MENU, action)
        from .options_page import EoSslOptionsFactory

        self.options_factory = EoSslOptionsFactory(self.show_setup)
        self.iface.registerOptionsWidgetFactory(self.options_factory)
        main_window = self.iface.mainWindow()
        if main_window is not None and not main_window.isVisible() and hasattr(self.iface, "initializationCompleted"):
            # QGIS is starting: the panel opens once its main window is up, so it is not hidden behind it
            self.iface.initializationCompleted.connect(self._after_startup)
        else:
            QTimer.singleShot(0, self.first_run)

    def _after_startup(self) -> None:
        with contextlib.suppress(TypeError):
            self.iface.initializationCompleted.disconnect(self._after_startup)
        QTimer.singleShot(500, self.first_run)  # after QGIS has restored its window state

    def toggle_similar_tool(self) -> None:
        """*Find similar* on the map canvas (:mod:`qgis_plugin.similar_tool`), on and off with its action."""
        from .similar_tool import SimilarMapTool

        canvas = self.iface.mapCanvas()
        action = next((a for a in self.actions if a.objectName() == "EoSslSimilarAction"), None)
        if getattr(self, "similar_tool", None) is None:
            self.similar_tool = SimilarMapTool(canvas, self.iface)
            if action is not None:
                self.similar_tool.setAction(action)
        if canvas.mapTool() is self.similar_tool:
            canvas.unsetMapTool(self.similar_tool)
        else:
            canvas.setMapTool(self.similar_tool)

    def unload(self) -> None:
        if getattr(self, "similar_tool", None) is not None:
            self.iface.mapCanvas().unsetMapTool(self.similar_tool)
            self.similar_tool = None
        for action in self.menu_actions:
            self.iface.removePluginRasterMenu(MENU, action)
            if self.toolbar is not None:
                self.toolbar.removeAction(action)
            action.deleteLater()
        self.actions, self.menu_actions = [], []
        if self.toolbar is not None:
            self.toolbar.deleteLater()
            self.toolbar = None
        if self.options_factory is not None:
            self.iface.unregisterOptionsWidgetFactory(self.options_factory)
            self.options_factory = None
        if self.label_panel is not None:
            self.label_panel.cleanup()
            self.iface.removeDockWidget(self.label_panel)
            self.label_panel.deleteLater()
            self.label_panel = None
        for attr in ("dialog", "diagnostics_dialog", "setup_dialog"):
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
        from .i18n import remove_translators

        remove_translators()

    # -- first run -------------------------------------------------------------------------------------------
    def first_run(self) -> str:
        """Without any backend Python: open the first-run panel the first time, later offer it in the message bar.
        Returns what it did ("none", "panel" or "message")."""
        if settings.backend_python() is not None or os.environ.get(NO_FIRST_RUN_ENV) == "1":
            return "none"
        if settings.get(settings.SETTINGS_SETUP_OFFERED) != "1":
            settings.put(settings.SETTINGS_SETUP_OFFERED, "1")
            self.show_setup()
            return "panel"
        bar = self.iface.messageBar()
        incomplete = any(c.note for c in settings.looked_at())
        text = tr("The backend environment is not complete (PyTorch is missing: was its creation cancelled?). "
                  "'{setup}' continues it.").format(setup=tr(names.SETUP_ACTION)) if incomplete else tr(
            "The backend environment is not set up yet: the eo-ssl tools need it to train and map.")
        item = bar.createMessage("eo-ssl", text)
        button = QPushButton(tr(names.SETUP_ACTION))
        button.clicked.connect(self.show_setup)
        item.layout().addWidget(button)
        bar.pushWidget(item, Qgis.Info, 0)
        return "message"

    # -- actions ---------------------------------------------------------------------------------------------
    def backend_python_setting(self) -> str | None:
        return settings.backend_python_setting()

    def show_dialog(self) -> None:
        try:
            if self.dialog is None:
                from .dialog import EoSslDialog

                self.dialog = EoSslDialog(self.iface, open_setup=self.show_setup)
            self.dialog.refresh_layers()
            self.dialog.show()
            self.dialog.raise_()
            self.dialog.activateWindow()
        except Exception as exc:  # noqa: BLE001 - a plugin bug must never take QGIS down
            QMessageBox.critical(self.iface.mainWindow(), "eo-ssl",
                                 tr("The eo-ssl dialog could not open: {error}").format(error=exc))

    def show_label_panel(self) -> None:
        from .parcel_labelling import ParcelLabelPanel

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

    def show_setup(self) -> None:
        """The first-run panel: create the backend environment, or use an existing Python."""
        from .setup_panel import BackendSetupDialog

        if self.setup_dialog is None:
            self.setup_dialog = BackendSetupDialog(self.iface.mainWindow())
            self.setup_dialog.backendReady.connect(self._backend_ready)
        self.setup_dialog.show()
        self.setup_dialog.raise_()
        self.setup_dialog.activateWindow()
        QTimer.singleShot(300, self._raise_setup)  # again once the window manager has placed it

    def _raise_setup(self) -> None:
        if self.setup_dialog is not None and self.setup_dialog.isVisible():
            self.setup_dialog.raise_()
            self.setup_dialog.activateWindow()

    def _backend_ready(self, report) -> None:
        for dlg in (self.dialog, self.diagnostics_dialog):
            if dlg is not None and hasattr(dlg, "set_backend_report"):
                dlg.set_backend_report(report)
        if self.diagnostics_dialog is not None:
            self.diagnostics_dialog.refresh()

    def show_diagnostics(self) -> None:
        """The diagnostics panel; its check runs in a task (the panel opens at once)."""
        from .diagnostics import DiagnosticsDialog

        if self.diagnostics_dialog is None:
            self.diagnostics_dialog = DiagnosticsDialog(self.iface.mainWindow(), open_setup=self.show_setup)
        else:
            self.diagnostics_dialog.refresh()
        self.diagnostics_dialog.show()
        self.diagnostics_dialog.raise_()

    def show_options(self) -> None:
        self.iface.showOptionsDialog(self.iface.mainWindow(), currentPage="EoSslOptionsPage")

    def open_example_model(self):
        """A copy of the shipped model in the Model Designer (saving asks where: the shipped file stays as it is)."""
        try:
            from processing.modeler.ModelerDialog import ModelerDialog
        except ImportError:
            QMessageBox.warning(self.iface.mainWindow(), "eo-ssl",
                                tr("The Model Designer needs the Processing plugin: enable it in Plugins > Manage "
                                   "and Install Plugins."))
            return None
        from .shipped_models import editable_copy

        self.modeler = ModelerDialog.create(editable_copy())
        self.modeler.show()
        self.modeler.activate()
        return self.modeler
