"""The toolbar dialog: a thin client over the eo-ssl Processing algorithms.

Pick Sentinel-2 / Sentinel-1 layers of the project, an AOI (polygon layer, optionally only its selected features,
or the current map extent), a POI, the method and its main hyper-parameters, the device and an output folder; the
dialog turns that into a chain of algorithm runs (prepare -> pre-train -> fine-tune -> evaluate -> predict -> label
parcels) and runs it in the background (:mod:`.jobs`), with progress, ETA, a live loss curve, the log and Cancel.
When it is done, the outputs are in the project (styled prediction, confidence, labelled parcels) and the report is
one click away.
"""

from __future__ import annotations

import contextlib
import html
import os
import re
from pathlib import Path
from typing import Any

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsMapLayerProxyModel,
    QgsMapLayerType,
    QgsProcessingFeatureSourceDefinition,
    QgsProcessingOutputLayerDefinition,
    QgsProject,
    QgsRasterLayer,
    QgsTask,
)
from qgis.gui import QgsFieldComboBox, QgsFileWidget, QgsMapLayerComboBox
from qgis.PyQt.QtCore import QDate, Qt, QUrl, pyqtSignal
from qgis.PyQt.QtGui import QDesktopServices, QIcon
from qgis.PyQt.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDateEdit,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from . import settings
from .algorithms.styling import OUTPUT_PROPERTY
from .algorithms.training import ENCODERS, METHODS, VARIANTS
from .jobs import JobRunner, Step
from .loss_plot import LossPlot
from .paths import ICON

S1_HINT = re.compile(r"(^|[^a-z])(s1|sentinel-?1|grd|vv|vh)([^a-z]|$)", re.IGNORECASE)


def band_names(layer: QgsRasterLayer) -> list[str]:
    """Band descriptions of a raster layer (``Band 3`` when the file names none)."""
    names = []
    provider = layer.dataProvider()
    for b in range(1, layer.bandCount() + 1):
        desc = provider.generateBandName(b) if provider is not None else f"Band {b}"
        name = layer.bandName(b)
        if ":" in name:
            name = name.split(":", 1)[1].strip()
        names.append(name or desc)
    return names


def looks_like_s1(layer: QgsRasterLayer) -> bool:
    names = [n.upper() for n in band_names(layer)]
    if names and set(names) <= {"VV", "VH", "HH", "HV"}:
        return True
    return bool(S1_HINT.search(layer.name()) or S1_HINT.search(Path(layer.source()).name))


class ProbeTask(QgsTask):
    """The backend environment check, off the main thread (it imports torch in the backend's Python: seconds)."""

    def __init__(self) -> None:
        super().__init__("eo-ssl: checking the backend environment", QgsTask.CanCancel)
        self.report = None

    def run(self) -> bool:
        self.report = settings.probe_backend()
        return True


class EoSslDialog(QDialog):
    """The toolbar dialog."""

    jobFinished = pyqtSignal(bool, str)  # noqa: N815

    def __init__(self, iface=None, parent: QWidget | None = None, project: QgsProject | None = None) -> None:
        super().__init__(parent or (iface.mainWindow() if iface is not None else None))
        self.iface = iface
        self.project = project or QgsProject.instance()
        self.job: JobRunner | None = None
        self.probe_task: ProbeTask | None = None
        self.backend_report = None
        self.report_path: str | None = None
        self.setWindowTitle("eo-ssl — self-supervised land cover from Sentinel-1/2")
        self.setWindowIcon(QIcon(str(ICON)))
        self.setObjectName("EoSslDialog")
        self._build()
        self.refresh_layers()
        self._update_steps()
        self.project.layersAdded.connect(self.refresh_layers)
        self.project.layersRemoved.connect(self.refresh_layers)

    # == layout ====================================================================================================
    def _build(self) -> None:
        root = QVBoxLayout(self)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        root.addWidget(splitter, 1)
        self.tabs = QTabWidget()
        splitter.addWidget(self.tabs)
        self.tabs.addTab(self._inputs_tab(), "Data")
        self.tabs.addTab(self._training_tab(), "Training")
        self.tabs.addTab(self._output_tab(), "Output")
        splitter.addWidget(self._run_panel())
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setSizes([620, 480])

        buttons = QDialogButtonBox()
        self.run_button = buttons.addButton("Run", QDialogButtonBox.ButtonRole.AcceptRole)
        self.cancel_button = buttons.addButton("Cancel job", QDialogButtonBox.ButtonRole.ActionRole)
        self.close_button = buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.cancel_button.setEnabled(False)
        self.run_button.clicked.connect(self.start_job)
        self.cancel_button.clicked.connect(self.cancel_job)
        self.close_button.clicked.connect(self.close)
        root.addWidget(buttons)
        self.resize(1100, 720)

    def _layer_list(self) -> QListWidget:
        lst = QListWidget()
        lst.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        lst.setMinimumHeight(90)
        return lst

    def _inputs_tab(self) -> QWidget:
        w = QWidget()
        lay = QVBoxLayout(w)
        box = QGroupBox("Sentinel-2 scenes (rasters of the project; check the ones to use)")
        bl = QVBoxLayout(box)
        self.s2_list = self._layer_list()
        bl.addWidget(self.s2_list)
        lay.addWidget(box, 2)
        box = QGroupBox("Sentinel-1 scenes (optional; VV/VH)")
        bl = QVBoxLayout(box)
        self.s1_list = self._layer_list()
        bl.addWidget(self.s1_list)
        lay.addWidget(box, 1)

        box = QGroupBox("Area of interest")
        gl = QGridLayout(box)
        self.aoi_layer_radio = QRadioButton("Polygon layer")
        self.aoi_extent_radio = QRadioButton("Current map extent")
        self.aoi_all_radio = QRadioButton("Whole Sentinel-2 footprint")
        self.aoi_all_radio.setChecked(True)
        self.aoi_layer = QgsMapLayerComboBox()
        self.aoi_layer.setFilters(QgsMapLayerProxyModel.PolygonLayer)
        self.aoi_layer.setAllowEmptyLayer(True)
        self.aoi_layer.setLayer(None)
        self.aoi_selected = QCheckBox("Selected features only")
        self.aoi_layer.layerChanged.connect(lambda layer: self.aoi_layer_radio.setChecked(layer is not None))
        gl.addWidget(self.aoi_layer_radio, 0, 0)
        gl.addWidget(self.aoi_layer, 0, 1)
        gl.addWidget(self.aoi_selected, 0, 2)
        gl.addWidget(self.aoi_extent_radio, 1, 0)
        gl.addWidget(self.aoi_all_radio, 1, 1)
        lay.addWidget(box)

        box = QGroupBox("Period of interest")
        hl = QHBoxLayout(box)
        self.poi_check = QCheckBox("Only scenes from")
        self.poi_start = QDateEdit(QDate(QDate.currentDate().year() - 1, 1, 1))
        self.poi_end = QDateEdit(QDate(QDate.currentDate().year() - 1, 12, 31))
        for d in (self.poi_start, self.poi_end):
            d.setCalendarPopup(True)
            d.setDisplayFormat("yyyy-MM-dd")
        hl.addWidget(self.poi_check)
        hl.addWidget(self.poi_start)
        hl.addWidget(QLabel("to"))
        hl.addWidget(self.poi_end)
        hl.addStretch(1)
        lay.addWidget(box)

        box = QGroupBox("Labelled parcels (for fine-tuning, prediction and parcel labelling)")
        fl = QFormLayout(box)
        self.parcels_layer = QgsMapLayerComboBox()
        self.parcels_layer.setFilters(QgsMapLayerProxyModel.PolygonLayer)
        self.parcels_layer.setAllowEmptyLayer(True)
        self.parcels_layer.setLayer(None)
        self.class_field = QgsFieldComboBox()
        self.parcels_layer.layerChanged.connect(self.class_field.setLayer)
        self.parcels_layer.layerChanged.connect(self._update_steps)
        fl.addRow("Parcels", self.parcels_layer)
        fl.addRow("Class field", self.class_field)
        lay.addWidget(box)
        return w

    def _training_tab(self) -> QWidget:
        w = QWidget()
        lay = QVBoxLayout(w)
        box = QGroupBox("Steps")
        gl = QGridLayout(box)
        self.step_prepare = QCheckBox("Prepare data")
        self.step_prepare.setChecked(True)
        self.step_prepare.setEnabled(False)
        self.step_pretrain = QCheckBox("Pre-train (self-supervised)")
        self.step_pretrain.setChecked(True)
        self.step_finetune = QCheckBox("Fine-tune on the parcels")
        self.step_evaluate = QCheckBox("Evaluate (report)")
        self.step_predict = QCheckBox("Predict land cover")
        self.step_label = QCheckBox("Label the parcels from the map")
        for i, cb in enumerate((self.step_prepare, self.step_pretrain, self.step_finetune, self.step_evaluate,
                                self.step_predict, self.step_label)):
            gl.addWidget(cb, i // 2, i % 2)
            cb.toggled.connect(self._update_steps)
        lay.addWidget(box)

        box = QGroupBox("Self-supervised pre-training")
        fl = QFormLayout(box)
        self.method = QComboBox()
        self.method.addItems(METHODS)
        self.variant = QComboBox()
        self.variant.addItems(VARIANTS)
        self.encoder = QComboBox()
        self.encoder.setEditable(True)
        self.encoder.addItems(ENCODERS)
        self.method.currentTextChanged.connect(lambda m: self.variant.setEnabled(m == "rs-byol"))
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 10000)
        self.epochs.setValue(10)
        self.max_steps = QSpinBox()
        self.max_steps.setRange(0, 10_000_000)
        self.max_steps.setSpecialValueText("no limit")
        self.batch_size = QSpinBox()
        self.batch_size.setRange(2, 4096)
        self.batch_size.setValue(32)
        self.crop = QSpinBox()
        self.crop.setRange(8, 1024)
        self.crop.setValue(64)
        fl.addRow("Method", self.method)
        fl.addRow("RS-BYOL variant", self.variant)
        fl.addRow("Encoder", self.encoder)
        fl.addRow("Epochs", self.epochs)
        fl.addRow("Maximum steps (each training)", self.max_steps)
        fl.addRow("Batch size", self.batch_size)
        fl.addRow("Crop (pixels)", self.crop)
        lay.addWidget(box)

        box = QGroupBox("Fine-tuning and prediction")
        fl = QFormLayout(box)
        self.ft_epochs = QSpinBox()
        self.ft_epochs.setRange(1, 10000)
        self.ft_epochs.setValue(20)
        self.label_fraction = QDoubleSpinBox()
        self.label_fraction.setRange(0.01, 1.0)
        self.label_fraction.setSingleStep(0.05)
        self.label_fraction.setValue(1.0)
        self.tile = QSpinBox()
        self.tile.setRange(32, 4096)
        self.tile.setValue(256)
        fl.addRow("Fine-tune epochs", self.ft_epochs)
        fl.addRow("Label fraction", self.label_fraction)
        fl.addRow("Prediction tile (pixels)", self.tile)
        self.model_package = QgsFileWidget()
        self.model_package.setStorageMode(QgsFileWidget.GetDirectory)
        self.model_package.setToolTip("A fine-tuned model package (a folder with model.json) to predict with when "
                                      "'Fine-tune' is off")
        self.model_package.fileChanged.connect(self._update_steps)
        fl.addRow("…or predict with this model", self.model_package)
        lay.addWidget(box)

        box = QGroupBox("Device")
        hl = QHBoxLayout(box)
        self.device = QComboBox()
        self.device.addItem("auto (GPU when there is one)", "auto")
        self.device.addItem("CPU", "cpu")
        self.device_label = QLabel("checking the backend environment…")
        self.device_label.setWordWrap(True)
        self.diagnostics_button = QPushButton("Backend…")
        self.diagnostics_button.setToolTip("Backend diagnostics: which Python, torch and device; create the managed "
                                           "environment")
        self.diagnostics_button.clicked.connect(self.show_diagnostics)
        hl.addWidget(self.device)
        hl.addWidget(self.device_label, 1)
        hl.addWidget(self.diagnostics_button)
        lay.addWidget(box)
        lay.addStretch(1)
        return w

    def _output_tab(self) -> QWidget:
        w = QWidget()
        fl = QFormLayout(w)
        self.output_dir = QgsFileWidget()
        self.output_dir.setStorageMode(QgsFileWidget.GetDirectory)
        self.output_dir.setFilePath(settings.get(settings.SETTINGS_LAST_OUTPUT) or str(Path.home() / "eo-ssl-runs"))
        fl.addRow("Output folder", self.output_dir)
        note = QLabel("Each step writes into a sub-folder: <code>chips/</code> (chip store), <code>pretrained/</code>, "
                      "<code>finetuned/</code> (model packages), <code>report/</code>, <code>landcover.tif</code> "
                      "(+ <code>.qml</code>), <code>confidence.tif</code>, <code>parcels_labelled.gpkg</code>. "
                      "Existing outputs are replaced; a pre-training resumes from its checkpoint when 'Resume' "
                      "is ticked.")
        note.setWordWrap(True)
        fl.addRow(note)
        self.resume = QCheckBox("Resume the pre-training from its checkpoint")
        fl.addRow(self.resume)
        return w

    def _run_panel(self) -> QWidget:
        w = QWidget()
        lay = QVBoxLayout(w)
        self.stage_label = QLabel("Ready.")
        self.stage_label.setWordWrap(True)
        lay.addWidget(self.stage_label)
        hl = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        self.eta_label = QLabel("")
        self.eta_label.setMinimumWidth(80)
        hl.addWidget(self.progress, 1)
        hl.addWidget(self.eta_label)
        lay.addLayout(hl)
        self.loss_plot = LossPlot()
        lay.addWidget(self.loss_plot, 2)
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(5000)
        lay.addWidget(self.log_view, 2)
        self.report_label = QLabel("")
        self.report_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.report_label.setOpenExternalLinks(False)
        self.report_label.linkActivated.connect(lambda url: QDesktopServices.openUrl(QUrl(url)))
        lay.addWidget(self.report_label)
        return w

    # == project layers ============================================================================================
    def refresh_layers(self, *_args) -> None:
        """Fill the S2/S1 lists with the project's raster layers (band names shown), keeping what was checked."""
        checked = {lst: self.checked_layer_ids(lst) for lst in (self.s2_list, self.s1_list)}
        first = not any(checked.values())
        rasters = [lyr for lyr in self.project.mapLayers().values() if lyr.type() == QgsMapLayerType.RasterLayer
                   and lyr.providerType() == "gdal" and not lyr.customProperty(OUTPUT_PROPERTY)]
        rasters.sort(key=lambda lyr: lyr.name())
        for lst in (self.s2_list, self.s1_list):
            lst.clear()
            for layer in rasters:
                names = band_names(layer)
                shown = ", ".join(names[:13]) + (" …" if len(names) > 13 else "")
                item = QListWidgetItem(f"{layer.name()} — {len(names)} band(s): {shown}")
                item.setData(Qt.ItemDataRole.UserRole, layer.id())
                item.setToolTip(layer.source())
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                if first:
                    is_s1 = looks_like_s1(layer)
                    state = is_s1 if lst is self.s1_list else not is_s1
                else:
                    state = layer.id() in checked[lst]
                item.setCheckState(Qt.CheckState.Checked if state else Qt.CheckState.Unchecked)
                lst.addItem(item)

    @staticmethod
    def checked_layer_ids(lst: QListWidget) -> list[str]:
        return [lst.item(i).data(Qt.ItemDataRole.UserRole) for i in range(lst.count())
                if lst.item(i).checkState() == Qt.CheckState.Checked]

    def set_checked_layers(self, lst: QListWidget, layer_ids: list[str]) -> None:
        for i in range(lst.count()):
            item = lst.item(i)
            checked = item.data(Qt.ItemDataRole.UserRole) in layer_ids
            item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)

    # == environment ===============================================================================================
    def check_environment(self) -> None:
        """Start the backend probe in the background; fills the device choice when it ends."""
        from qgis.core import QgsApplication

        if self.probe_task is not None:
            return
        task = ProbeTask()
        task.taskCompleted.connect(lambda: self.set_backend_report(task.report))
        task.taskTerminated.connect(lambda: self.device_label.setText("backend check failed"))
        self.probe_task = task
        QgsApplication.taskManager().addTask(task)

    def show_diagnostics(self) -> None:
        from .diagnostics import DiagnosticsDialog

        dlg = DiagnosticsDialog(self)
        dlg.reportReady.connect(self.set_backend_report)
        dlg.show()
        self._diagnostics = dlg

    def set_backend_report(self, report) -> None:
        self.backend_report = report
        self.probe_task = None
        if report is None:
            return
        while self.device.count() > 2:
            self.device.removeItem(2)
        if not report.ok:
            self.device_label.setText(f"<span style='color:#b00'>{html.escape(report.summary())}</span><br>"
                                      f"{html.escape(report.hint or '')} Click <i>Backend…</i> to set it up.")
            return
        info = report.info
        if info.get("device") == "cuda":
            self.device.addItem(f"1 GPU: {info.get('device_name')}", "1")
            for n in range(2, int(info.get("device_count") or 1) + 1):
                self.device.addItem(f"{n} GPUs (data-parallel)", str(n))
            self.device.setCurrentIndex(2)
        self.device_label.setText(html.escape(report.summary()))

    # == the job ===================================================================================================
    def _update_steps(self, *_args) -> None:
        has_parcels = self.parcels_layer.currentLayer() is not None
        for cb in (self.step_finetune, self.step_label):
            cb.setEnabled(has_parcels)
            if not has_parcels:
                cb.setChecked(False)
        self.step_evaluate.setEnabled(has_parcels and self.step_pretrain.isChecked())
        if not self.step_evaluate.isEnabled():
            self.step_evaluate.setChecked(False)
        can_predict = (has_parcels and self.step_finetune.isChecked()) or self.existing_model() is not None
        self.step_predict.setEnabled(can_predict)
        if not self.step_predict.isEnabled():
            self.step_predict.setChecked(False)
        if not self.step_predict.isChecked():
            self.step_label.setChecked(False)
            self.step_label.setEnabled(False)

    def existing_model(self) -> Path | None:
        """The model package chosen to predict with (instead of fine-tuning in this run), if any."""
        text = self.model_package.filePath().strip() if hasattr(self, "model_package") else ""
        return Path(text) if text and (Path(text) / "model.json").is_file() else None

    def _input_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"S2": self.checked_layer_ids(self.s2_list)}
        s1 = self.checked_layer_ids(self.s1_list)
        if s1:
            params["S1"] = s1
        if self.aoi_layer_radio.isChecked() and self.aoi_layer.currentLayer() is not None:
            layer = self.aoi_layer.currentLayer()
            params["AOI"] = QgsProcessingFeatureSourceDefinition(layer.id(), self.aoi_selected.isChecked())
        elif self.aoi_extent_radio.isChecked():
            params["EXTENT"] = self.map_extent_string()
        if self.poi_check.isChecked():
            params["POI_START"] = self.poi_start.date().toString(Qt.DateFormat.ISODate)
            params["POI_END"] = self.poi_end.date().toString(Qt.DateFormat.ISODate)
        return params

    def map_extent_string(self) -> str:
        if self.iface is None:
            raise ValueError("no map canvas")
        canvas = self.iface.mapCanvas()
        e = canvas.extent()
        crs: QgsCoordinateReferenceSystem = canvas.mapSettings().destinationCrs()
        return f"{e.xMinimum()},{e.xMaximum()},{e.yMinimum()},{e.yMaximum()} [{crs.authid() or crs.toWkt()}]"

    def build_steps(self) -> list[Step]:
        """The algorithm runs for the current choices (raises ValueError with a message for the user)."""
        out = Path(self.output_dir.filePath().strip() or "")
        if not str(out) or str(out) == ".":
            raise ValueError("Choose an output folder.")
        inputs = self._input_params()
        if not inputs["S2"]:
            raise ValueError("Check at least one Sentinel-2 layer.")
        device = self.device.currentData() or "auto"
        parcels = self.parcels_layer.currentLayer()
        field = self.class_field.currentField()
        if parcels is not None and not field and (self.step_finetune.isChecked()):
            raise ValueError("Choose the class field of the parcels.")
        chips = out / "chips"
        prepare = {**inputs, "OUTPUT": str(chips)}
        if parcels is not None and field:
            prepare.update(PARCELS=parcels.id(), CLASS_FIELD=field)
        steps = [Step("eo_ssl:prepare", prepare, "Prepare data")]
        pretrained = out / "pretrained"
        if self.step_pretrain.isChecked():
            method = self.method.currentText()
            params = {"DATA": str(chips), "METHOD": method, "ENCODER": self.encoder.currentText().strip(),
                      "EPOCHS": self.epochs.value(), "MAX_STEPS": self.max_steps.value(),
                      "BATCH_SIZE": self.batch_size.value(), "CROP": self.crop.value(), "DEVICES": device,
                      "RESUME": self.resume.isChecked(), "OUTPUT": str(pretrained)}
            if method == "rs-byol":
                params["VARIANT"] = self.variant.currentText()
            steps.append(Step("eo_ssl:pretrain", params, f"Pre-train ({method})"))
        finetuned = out / "finetuned"
        if self.step_finetune.isChecked():
            params = {"DATA": str(chips), "TASK": "segmentation", "EPOCHS": self.ft_epochs.value(),
                      "MAX_STEPS": self.max_steps.value(), "LABEL_FRACTION": self.label_fraction.value(),
                      "DEVICES": device, "OUTPUT": str(finetuned)}
            if self.step_pretrain.isChecked():
                params["INIT"] = str(pretrained)
            steps.append(Step("eo_ssl:finetune", params, "Fine-tune"))
        if self.step_evaluate.isChecked():
            steps.append(Step("eo_ssl:evaluate", {"INIT": str(pretrained), "DATA": str(chips), "DEVICES": device,
                                                  "OUTPUT": str(out / "report")}, "Evaluate"))
        if self.step_predict.isChecked():
            model = finetuned if self.step_finetune.isChecked() else self.existing_model()
            if model is None:
                raise ValueError("Tick 'Fine-tune' or choose a model package to predict with.")
            params = {"MODEL": str(model), **inputs, "TILE": self.tile.value(), "DEVICES": device,
                      "OUTPUT": QgsProcessingOutputLayerDefinition(str(out / "landcover.tif"), self.project),
                      "CONFIDENCE": QgsProcessingOutputLayerDefinition(str(out / "confidence.tif"), self.project)}
            steps.append(Step("eo_ssl:predict", params, "Predict land cover"))
        if self.step_label.isChecked() and parcels is not None:
            steps.append(Step("eo_ssl:label_parcels", {
                "MAP": str(out / "landcover.tif"), "CONFIDENCE": str(out / "confidence.tif"),
                "PARCELS": QgsProcessingFeatureSourceDefinition(parcels.id(), False),
                "OUTPUT": QgsProcessingOutputLayerDefinition(str(out / "parcels_labelled.gpkg"), self.project)},
                "Label parcels"))
        return steps

    def start_job(self) -> bool:
        if self.job is not None and self.job.running:
            return False
        try:
            steps = self.build_steps()
        except ValueError as exc:
            self.append_log(str(exc), "error")
            self.stage_label.setText(f"<b>Cannot start:</b> {html.escape(str(exc))}")
            return False
        out = Path(self.output_dir.filePath())
        out.mkdir(parents=True, exist_ok=True)
        settings.put(settings.SETTINGS_LAST_OUTPUT, str(out))
        self.loss_plot.clear()
        self.progress.setValue(0)
        self.report_label.setText("")
        self.report_path = None
        self.job = JobRunner(steps, self.project, self)
        self.job.stepStarted.connect(self._on_step_started)
        self.job.stepFinished.connect(self._on_step_finished)
        self.job.progress.connect(lambda v: self.progress.setValue(int(round(v))))
        self.job.progressText.connect(self._on_progress_text)
        self.job.log.connect(self.append_log)
        self.job.backendEvent.connect(self._on_backend_event)
        self.job.finished.connect(self._on_job_finished)
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.tabs.setEnabled(False)
        self.append_log(f"Output folder: {out}", "info")
        self.job.start()
        return True

    def cancel_job(self) -> None:
        if self.job is not None and self.job.running:
            self.job.cancel()
            self.cancel_button.setEnabled(False)

    def _on_step_started(self, index: int, title: str) -> None:
        total = len(self.job.steps) if self.job else 1
        self.stage_label.setText(f"<b>Step {index + 1}/{total}: {html.escape(title)}</b>")
        self.progress.setValue(0)
        self.eta_label.setText("")
        if self.job and self.job.steps[index].alg_id in ("eo_ssl:pretrain", "eo_ssl:finetune"):
            self.loss_plot.start_series(title)

    def _on_progress_text(self, text: str) -> None:
        eta = re.search(r"ETA ([0-9:]+)", text)
        self.eta_label.setText(f"ETA {eta.group(1)}" if eta else "")
        self.progress.setFormat(f"%p%  {text.split(' · ')[0]}" if text else "%p%")

    def _on_backend_event(self, event: dict) -> None:
        if self.job is None or self.job.index < 0:
            return
        if self.job.steps[self.job.index].alg_id in ("eo_ssl:pretrain", "eo_ssl:finetune"):
            self.loss_plot.add_event(event)

    def _on_step_finished(self, index: int, ok: bool, results: dict) -> None:
        step = self.job.steps[index] if self.job else None
        if ok and step is not None and step.alg_id == "eo_ssl:evaluate" and results.get("REPORT"):
            self.report_path = str(results["REPORT"])
            url = QUrl.fromLocalFile(self.report_path).toString()
            self.report_label.setText(f"Report: <a href=\"{url}\">{html.escape(self.report_path)}</a>")

    def _on_job_finished(self, ok: bool, message: str) -> None:
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.tabs.setEnabled(True)
        if ok:
            self.progress.setValue(100)
        self.eta_label.setText("")
        colour = "#1a7f37" if ok else "#b00"
        self.stage_label.setText(f"<b style='color:{colour}'>{html.escape(message)}</b>")
        self.append_log(message, "info" if ok else "error")
        self.jobFinished.emit(ok, message)

    def append_log(self, text: str, level: str = "info") -> None:
        prefix = {"warning": "⚠ ", "error": "✖ ", "step": "", "debug": "· "}.get(level, "")
        for line in str(text).splitlines() or [""]:
            self.log_view.appendPlainText(prefix + line)

    # == lifecycle =================================================================================================
    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        if self.backend_report is None and os.environ.get("EO_SSL_NO_PROBE") != "1":
            self.check_environment()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        # a running job goes on in the task manager; the dialog only hides
        super().closeEvent(event)

    def disconnect_project(self) -> None:
        for sig in (self.project.layersAdded, self.project.layersRemoved):
            with contextlib.suppress(TypeError):
                sig.disconnect(self.refresh_layers)

