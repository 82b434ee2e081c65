"""The toolbar dialog: a thin client over the eo-ssl Processing algorithms.

Pick Sentinel-2 / Sentinel-1 layers of the project, an AOI (polygon layer, optionally only its selected features,
or the current map extent), a POI, the method and its main hyper-parameters, the device and an output folder; the
dialog turns that into a chain of algorithm runs (prepare -> pre-train -> fine-tune -> evaluate -> predict -> label
parcels) and runs it in the background (:mod:`.jobs`), with progress, ETA, a live loss curve, the log and Cancel.
When it is done, the outputs are in the project (styled prediction, confidence, labelled parcels) and the report is
one click away.

The chip store goes to the cache folder, keyed by its inputs (:mod:`.chipstores`): a second run on the same layers,
area and period (another method, Resume) reuses it and says so. The default RS-BYOL variant ``auto`` fits the layers
checked ('single' with Sentinel-1, 's2-only' without); a variant that needs Sentinel-1 without a Sentinel-1 layer is
refused before anything starts.

Why one module of this length: the dialog is one window whose tabs feed one chain of runs, and Qt's widget set-up
is long by nature (each widget, its tooltip, its range from the backend's option spec); the work it starts lives
elsewhere (:mod:`.jobs`, :mod:`.chipstores`, the algorithms).
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
    QgsProject,
    QgsRasterLayer,
)
from qgis.gui import QgsFieldComboBox, QgsFileWidget, QgsMapLayerComboBox
from qgis.PyQt import sip
from qgis.PyQt.QtCore import QDate, QEvent, QObject, Qt, QUrl, QVariant, pyqtSignal
from qgis.PyQt.QtGui import QDesktopServices, QIcon
from qgis.PyQt.QtWidgets import (
    QAbstractItemView,
    QAbstractSpinBox,
    QApplication,
    QCheckBox,
    QComboBox,
    QDateEdit,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from . import backend_spec, chipstores, names, settings, tasks
from .algorithms.styling import OUTPUT_PROPERTY
from .algorithms.training import CLI_ONLY_METHODS, ENCODERS, S1_VARIANTS
from .dialog_plan import FEW_LABEL_STEPS, Choices, FieldInfo, given, guess_class_field, model_problem, plan_steps
from .i18n import tr
from .jobs import JobRunner, Step
from .log_view import FollowingLog
from .loss_plot import LossPlot
from .paths import ICON

S1_HINT = re.compile(r"(^|[^a-z])(s1[ab]?|sentinel-?1|grd|vv|vh)([^a-z]|$)", re.IGNORECASE)
S2_HINT = re.compile(r"(^|[^a-z0-9])(s2[ab]?|sentinel-?2|msil1c|msil2a|l1c|l2a|t\d{2}[a-z]{3})([^a-z]|$)",
                     re.IGNORECASE)
#: A band named at the end of a per-band file name (``T33UUU_20170216T102101_B8A.jp2``, ``..._B02_10m.jp2``,
#: ``..._VH.tif``): the rule of the backend's ``band_token_in_filename``, for display (QGIS never imports the backend).
_S2_FILE_BAND = re.compile(r"(?:^|[_\-.])B(\d{1,2})(A?)(?:_\d{2}m)?$", re.IGNORECASE)
_S1_FILE_BAND = re.compile(r"(?:^|[_\-.])(VV|VH)$", re.IGNORECASE)
_GENERIC_BAND = re.compile(r"^Band \d+$")


def band_from_filename(path: str) -> str | None:
    """``B02``, ``B8A``, ``VV``... when the file name ends with a band name, else None."""
    stem = Path(path).stem
    m = _S2_FILE_BAND.search(stem)
    if m:
        return f"B{int(m.group(1)):02d}" if not m.group(2) else f"B{int(m.group(1))}A"
    m = _S1_FILE_BAND.search(stem)
    return m.group(1).upper() if m else None


def band_names(layer: QgsRasterLayer) -> list[str]:
    """Band descriptions of a raster layer; a single-band file that describes none is named by its file name
    (``..._B02.jp2`` -> ``B02``), else ``Band 3``."""
    names = []
    provider = layer.dataProvider()
    for b in range(1, layer.bandCount() + 1):
        desc = provider.generateBandName(b) if provider is not None else f"Band {b}"
        name = layer.bandName(b)
        if ":" in name:
            name = name.split(":", 1)[1].strip()
        names.append(name or desc)
    if len(names) == 1 and _GENERIC_BAND.match(names[0]):
        names = [band_from_filename(layer.source().split("|")[0]) or names[0]]
    return names


def looks_like_s1(layer: QgsRasterLayer) -> bool:
    names = [n.upper() for n in band_names(layer)]
    if names and set(names) <= {"VV", "VH", "HH", "HV"}:
        return True
    return bool(S1_HINT.search(layer.name()) or S1_HINT.search(Path(layer.source()).name))


def looks_like_s2(layer: QgsRasterLayer) -> bool:
    names = band_names(layer)
    if any(re.match(r"^B(0[1-9]|1[0-2]|8A)$", n, re.IGNORECASE) for n in names):
        return True
    return bool(S2_HINT.search(layer.name()) or S2_HINT.search(Path(layer.source()).name))


def spin_box(command: str, cli: str, unset: str | None = None) -> QSpinBox:
    """A spin box for a whole-number option: its range and default from the backend's spec. With ``unset`` (an
    option whose default depends on the method or the model) one step below the range shows that text and means
    "not given" (:func:`given` leaves it out)."""
    opt = backend_spec.option(command, cli)
    box = QSpinBox()
    low = int(opt["minimum"]) if opt.get("minimum") is not None else 0
    box.setRange(low - 1 if unset else low, int(opt["maximum"]) if opt.get("maximum") is not None else 2**31 - 1)
    if unset:
        box.setSpecialValueText(unset)
    default = backend_spec.default(command, cli)
    box.setValue(box.minimum() if default is None else int(default))
    return box


def spin_value(box: QSpinBox) -> int | None:
    """The value of a :func:`spin_box`; None at its "not given" value (the text shown below the range)."""
    return None if box.specialValueText() and box.value() == box.minimum() else box.value()


__all__ = ["EoSslDialog", "band_names", "given", "spin_box", "spin_value"]


def class_field_of(layer) -> str | None:
    """The field of a parcels layer whose values look like classes (:func:`.dialog_plan.guess_class_field`)."""
    if layer is None:
        return None
    fields = []
    for index, f in enumerate(layer.fields()):
        distinct = len(layer.uniqueValues(index, 102))  # capped: more than 100 is no class field anyway
        fields.append(FieldInfo(f.name(), f.type() == QVariant.String, distinct))
    return guess_class_field(fields, layer.featureCount())


class WheelGuard(QObject):
    """The mouse wheel over a spin box, date or list of a scrolled tab scrolls the tab, unless that field has the
    keyboard (clicked into): scrolling down the Training tab never changes Crop on the way."""

    def __init__(self, scroll: QScrollArea) -> None:
        super().__init__(scroll)
        self.scroll = scroll

    def guard(self, page: QWidget) -> None:
        for widget in [*page.findChildren(QAbstractSpinBox), *page.findChildren(QComboBox)]:
            widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # the wheel alone gives no focus
            widget.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt API
        if event.type() == QEvent.Type.Wheel and isinstance(obj, QWidget) and not obj.hasFocus():
            QApplication.sendEvent(self.scroll.verticalScrollBar(), event)
            return True
        return False


class EoSslDialog(QDialog):
    """The toolbar dialog."""

    jobFinished = pyqtSignal(bool, str)  # noqa: N815

    def __init__(self, iface=None, parent: QWidget | None = None, project: QgsProject | None = None,
                 open_setup=None) -> None:
        super().__init__(parent or (iface.mainWindow() if iface is not None else None))
        self.iface = iface
        self.project = project or QgsProject.instance()
        self.open_setup = open_setup
        self.job: JobRunner | None = None
        self.probe_task: tasks.CallTask | None = None
        self.backend_report = None
        self.report_path: str | None = None
        self.chip_store: Path | None = None
        self.reused_store: dict | None = None
        self._description: tuple[Path, dict] | None = None
        self._parcels_seen = None  # the parcels layer the step defaults were set for
        self.setWindowTitle(tr("eo-ssl — self-supervised land cover from Sentinel-1/2"))
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
        for page, title in ((self._inputs_tab(), tr("Data")), (self._training_tab(), tr("Training")),
                            (self._output_tab(), tr("Output"))):
            scroll = QScrollArea()  # a small screen scrolls instead of squeezing the wrapped explanations
            scroll.setWidgetResizable(True)
            scroll.setFrameShape(QFrame.Shape.NoFrame)
            scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # the page fits the width
            scroll.setWidget(page)
            WheelGuard(scroll).guard(page)
            self.tabs.addTab(scroll, title)
        splitter.addWidget(self._run_panel())
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setSizes([660, 440])

        buttons = QDialogButtonBox()
        self.run_button = buttons.addButton(tr("Run"), QDialogButtonBox.ButtonRole.AcceptRole)
        self.cancel_button = buttons.addButton(tr("Cancel job"), QDialogButtonBox.ButtonRole.ActionRole)
        self.close_button = buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.cancel_button.setEnabled(False)
        self.run_button.clicked.connect(self.start_job)
        self.cancel_button.clicked.connect(self.cancel_job)
        self.close_button.clicked.connect(self.close)
        root.addWidget(buttons)
        self.resize(1100, 720)

    @staticmethod
    def _narrow(combo: QComboBox, chars: int = 16) -> QComboBox:
        """A combo box as narrow as ``chars`` characters allow, whatever its longest item (layer names, long
        choices): the tab fits its width instead of being clipped."""
        combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        combo.setMinimumContentsLength(chars)
        return combo

    def _layer_list(self) -> QListWidget:
        lst = QListWidget()
        lst.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        lst.setMinimumHeight(90)
        lst.itemChanged.connect(self._update_variant_hint)
        return lst

    def _inputs_tab(self) -> QWidget:
        w = QWidget()
        lay = QVBoxLayout(w)
        box = QGroupBox(tr("Sentinel-2 scenes (check the ones to use)"))
        bl = QVBoxLayout(box)
        self.s2_list = self._layer_list()
        bl.addWidget(self.s2_list)
        lay.addWidget(box, 2)
        box = QGroupBox(tr("Sentinel-1 scenes (optional; VV/VH)"))
        bl = QVBoxLayout(box)
        self.s1_list = self._layer_list()
        bl.addWidget(self.s1_list)
        self.all_rasters = QCheckBox(tr("Show all raster layers"))
        self.all_rasters.setToolTip(tr("Not only those that look like Sentinel-1 or -2. Sentinel-1 layers are "
                                       "recognised by their VV/VH bands or a name with S1, GRD, VV or VH; the "
                                       "Sentinel-2 list leaves them out."))
        self.all_rasters.toggled.connect(lambda _on: self.refresh_layers())
        bl.addWidget(self.all_rasters)
        lay.addWidget(box, 1)

        box = QGroupBox(tr("Area of interest"))
        gl = QGridLayout(box)
        self.aoi_layer_radio = QRadioButton(tr("Polygon layer"))
        self.aoi_extent_radio = QRadioButton(tr("Current map extent"))
        self.aoi_all_radio = QRadioButton(tr("Whole Sentinel-2 footprint"))
        self.aoi_all_radio.setChecked(True)
        self.aoi_layer = self._narrow(QgsMapLayerComboBox())
        self.aoi_layer.setFilters(QgsMapLayerProxyModel.PolygonLayer)
        self.aoi_layer.setAllowEmptyLayer(True)
        self.aoi_layer.setLayer(None)
        self.aoi_selected = QCheckBox(tr("Selected features only"))
        self.aoi_layer.layerChanged.connect(lambda layer: self.aoi_layer_radio.setChecked(layer is not None))
        gl.addWidget(self.aoi_all_radio, 0, 0)
        gl.addWidget(self.aoi_extent_radio, 0, 1)
        gl.addWidget(self.aoi_layer_radio, 1, 0)
        gl.addWidget(self.aoi_layer, 1, 1)
        gl.addWidget(self.aoi_selected, 2, 1)
        gl.setColumnStretch(1, 1)
        lay.addWidget(box)

        box = QGroupBox(tr("Period of interest"))
        hl = QHBoxLayout(box)
        self.poi_check = QCheckBox(tr("Only scenes from"))
        self.poi_start = QDateEdit(QDate(QDate.currentDate().year() - 1, 1, 1))
        self.poi_end = QDateEdit(QDate(QDate.currentDate().year() - 1, 12, 31))
        for d in (self.poi_start, self.poi_end):
            d.setCalendarPopup(True)
            d.setDisplayFormat("yyyy-MM-dd")
        hl.addWidget(self.poi_check)
        hl.addWidget(self.poi_start)
        hl.addWidget(QLabel(tr("to")))
        hl.addWidget(self.poi_end)
        hl.addStretch(1)
        lay.addWidget(box)

        box = QGroupBox(tr("Labelled parcels (a few per class are enough)"))
        fl = QFormLayout(box)
        fl.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)  # narrow: the field goes under its label
        self.parcels_layer = self._narrow(QgsMapLayerComboBox())
        self.parcels_layer.setFilters(QgsMapLayerProxyModel.PolygonLayer)
        self.parcels_layer.setAllowEmptyLayer(True)
        self.parcels_layer.setLayer(None)
        self.class_field = self._narrow(QgsFieldComboBox())
        self.class_field.setAllowEmptyFieldName(True)
        self.class_field.setToolTip(tr("The attribute holding the class of each parcel. Chosen for you: a text field "
                                       "with few distinct values (never the feature id)."))
        self.parcels_layer.layerChanged.connect(self._on_parcels_changed)
        fl.addRow(tr("Parcels"), self.parcels_layer)
        fl.addRow(tr("Class field"), self.class_field)
        lay.addWidget(box)
        return w

    def _training_tab(self) -> QWidget:
        w = QWidget()
        lay = QVBoxLayout(w)
        box = QGroupBox(tr("Steps"))
        gl = QGridLayout(box)
        self.step_prepare = QCheckBox(tr("Prepare data (reused while the inputs do not change)"))
        self.step_prepare.setChecked(True)
        self.step_prepare.setEnabled(False)
        self.step_prepare.setToolTip(tr("The chip store is kept in the cache folder ({options}) and reused by the "
                                        "next run on the same inputs.").format(options=tr(names.OPTIONS_PATH)))
        self.step_pretrain = QCheckBox(tr("Pre-train (self-supervised)"))
        self.step_pretrain.setChecked(True)
        self.step_pretrain.setToolTip(tr("Learns an encoder from the unlabelled scenes (minutes to hours); the pixel "
                                         "classifier then also uses its embedding where it helps on held-out "
                                         "parcels. Off by default: the first map needs only the parcels."))
        self.step_finetune = QCheckBox(tr("Fine-tune on the parcels"))
        self.step_evaluate = QCheckBox(tr("Compare report (evaluate)"))
        self.step_evaluate.setToolTip(tr("Which path gives the best map, on parcels none of them trained on: the "
                                         "classic classifiers, random init and the pre-trained encoder. Runs "
                                         "after the map."))
        self.step_predict = QCheckBox(tr("Predict land cover"))
        self.step_label = QCheckBox(tr("Label the parcels from the map"))
        gl.addWidget(self.step_prepare, 0, 0, 1, 2)
        for i, cb in enumerate((self.step_pretrain, self.step_finetune, self.step_evaluate, self.step_predict,
                                self.step_label)):
            gl.addWidget(cb, 1 + i // 2, i % 2)
            cb.toggled.connect(self._update_steps)
        lay.addWidget(box)

        box = QGroupBox(tr("Self-supervised pre-training"))
        fl = QFormLayout(box)
        fl.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)  # narrow: the field goes under its label
        self.method = QComboBox()
        self.method.addItems([m for m in backend_spec.choices("pretrain", "--method") if m not in CLI_ONLY_METHODS])
        self.variant = QComboBox()
        self.variant.addItems([backend_spec.AUTO, *backend_spec.choices("pretrain", "--variant")])
        self.variant_hint = QLabel("")
        self.variant_hint.setWordWrap(True)
        self.encoder = QComboBox()  # empty: the method's encoder (nothing is sent)
        self.encoder.setEditable(True)
        self.encoder.addItems(["", *ENCODERS])
        self.encoder.lineEdit().setPlaceholderText(tr("the method's: {encoders}").format(
            encoders=backend_spec.method_defaults_text("encoder")))
        self.method.currentTextChanged.connect(self._update_variant_hint)
        self.variant.currentTextChanged.connect(self._update_variant_hint)
        self.epochs = spin_box("pretrain", "--epochs")
        self.max_steps = spin_box("pretrain", "--max-steps", unset=tr("no limit"))
        self.batch_size = spin_box("pretrain", "--batch-size", unset=tr("the method's"))
        self.batch_size.setToolTip(tr("The method's own batch size: {sizes}").format(
            sizes=backend_spec.method_defaults_text("batch_size")))
        self.crop = spin_box("pretrain", "--crop")
        fl.addRow(tr("Method"), self.method)
        fl.addRow(tr("RS-BYOL variant"), self.variant)
        fl.addRow("", self.variant_hint)
        fl.addRow(tr("Encoder"), self.encoder)
        fl.addRow(tr("Epochs"), self.epochs)
        fl.addRow(tr("Maximum steps (each training)"), self.max_steps)
        fl.addRow(tr("Batch size"), self.batch_size)
        fl.addRow(tr("Crop (pixels)"), self.crop)
        lay.addWidget(box)

        box = QGroupBox(tr("Fine-tuning and prediction"))
        fl = QFormLayout(box)
        fl.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)  # narrow: the field goes under its label
        self.ft_model = QComboBox()
        self.ft_model.addItem(tr("Pixel classifier: spectra of every date + the pre-trained embedding (best with "
                                 "few polygons)"), "pixel")
        self.ft_model.addItem(tr("U-Net over the pre-trained encoder"), "unet")
        self.ft_model.setToolTip(tr("With a handful of labelled polygons a per-pixel classifier generalises better "
                                    "than a U-Net, which memorises the polygons. Tick 'Evaluate' to compare both on "
                                    "parcels none of them trained on."))
        self.ft_model.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.ft_model.setMinimumContentsLength(24)
        self.ft_model.currentIndexChanged.connect(self._update_model_fields)
        fl.addRow(tr("Model"), self.ft_model)
        self.quick = QCheckBox(tr("Quick first map (in seconds)"))
        self.quick.setChecked(True)
        self.quick.setToolTip(tr("The pixel classifier chooses between logistic regression and the vote on at most "
                                 "3000 training pixels: a first map in seconds. Untick it for the map you keep (8 "
                                 "cross-validated candidates on up to 20,000 pixels: minutes)."))
        fl.addRow("", self.quick)
        self.ft_epochs = spin_box("finetune", "--epochs")
        self.ft_epochs.setToolTip(tr("U-Net only: the pixel classifier is fitted at once, without epochs."))
        self.label_fraction = QDoubleSpinBox()
        fraction = backend_spec.option("finetune", "--label-fraction")
        self.label_fraction.setRange(0.01, fraction["maximum"])  # the range is open at 0: the smallest shown step
        self.label_fraction.setSingleStep(0.05)
        self.label_fraction.setValue(backend_spec.default("finetune", "--label-fraction"))
        self.tile = spin_box("predict", "--tile", unset=tr("the model's"))
        self.tile.setToolTip(tr("Empty (the model's): 256 for a segmentation model, a classifier's chip size."))
        fl.addRow(tr("Fine-tune epochs"), self.ft_epochs)
        fl.addRow(tr("Label fraction"), self.label_fraction)
        fl.addRow(tr("Prediction tile (pixels)"), self.tile)
        self.model_package = QgsFileWidget()
        self.model_package.setStorageMode(QgsFileWidget.GetDirectory)
        self.model_package.setToolTip(tr("A fine-tuned model package (a folder with model.json) to predict with "
                                         "when 'Fine-tune' is off"))
        self.model_package.fileChanged.connect(self._update_steps)
        fl.addRow(tr("…or predict with this model"), self.model_package)
        self.model_hint = QLabel("")
        self.model_hint.setWordWrap(True)
        self.model_hint.setVisible(False)
        fl.addRow("", self.model_hint)
        lay.addWidget(box)

        box = QGroupBox(tr("Device"))
        vl = QVBoxLayout(box)
        hl = QHBoxLayout()
        self.device = self._narrow(QComboBox(), 12)
        self.device.addItem(tr("auto (GPU when there is one)"), "auto")
        self.device.addItem(tr("CPU"), "cpu")
        self.device_label = QLabel(tr("checking the backend environment…"))
        self.device_label.setWordWrap(True)
        self.setup_button = QPushButton(tr(names.SETUP_ACTION))
        self.setup_button.setToolTip(tr("Create the backend environment, or choose an existing Python"))
        self.setup_button.clicked.connect(self._open_setup)
        self.setup_button.setVisible(False)
        self.diagnostics_button = QPushButton(tr("Backend…"))
        self.diagnostics_button.setToolTip(tr("Backend diagnostics: which Python, torch and device"))
        self.diagnostics_button.clicked.connect(self.show_diagnostics)
        hl.addWidget(self.device)
        hl.addStretch(1)
        hl.addWidget(self.setup_button)
        hl.addWidget(self.diagnostics_button)
        vl.addLayout(hl)
        vl.addWidget(self.device_label)  # below the buttons: a long report wraps instead of pushing them out
        lay.addWidget(box)
        lay.addStretch(1)
        self._select_default_device()
        self._update_model_fields()
        return w

    def _output_tab(self) -> QWidget:
        w = QWidget()
        fl = QFormLayout(w)
        self.output_dir = QgsFileWidget()
        self.output_dir.setStorageMode(QgsFileWidget.GetDirectory)
        self.output_dir.setFilePath(settings.get(settings.SETTINGS_LAST_OUTPUT) or str(Path.home() / "eo-ssl-runs"))
        fl.addRow(tr("Output folder"), self.output_dir)
        note = QLabel(tr(
            "Each step writes into the output folder: <code>pretrained/</code>, <code>finetuned/</code> (model "
            "packages), <code>report/</code>, <code>landcover.tif</code> (+ <code>.qml</code>), "
            "<code>confidence.tif</code>, <code>parcels_labelled.gpkg</code>. The chip store goes to the cache "
            "folder ({options}) and is reused while the layers, area and period do not change. Existing outputs are "
            "replaced; a pre-training resumes from its checkpoint when 'Resume' is ticked.").format(
                options=html.escape(tr(names.OPTIONS_PATH))))
        note.setWordWrap(True)
        fl.addRow(note)
        self.resume = QCheckBox(tr("Resume the pre-training from its checkpoint"))
        fl.addRow(self.resume)
        return w

    def _run_panel(self) -> QWidget:
        w = QWidget()
        lay = QVBoxLayout(w)
        self.stage_label = QLabel(tr("Ready."))
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
        self.log_view = FollowingLog()
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
        """Fill the S2/S1 lists with the project's raster layers (band names shown), keeping what was checked.
        The Sentinel-1 list shows the layers that look like Sentinel-1 (VV/VH bands, or S1 in the name), the
        Sentinel-2 list the others; 'Show all raster layers' shows every raster in both, the likely ones first."""
        checked = {lst: self.checked_layer_ids(lst) for lst in (self.s2_list, self.s1_list)}
        first = not any(checked.values())
        rasters = [lyr for lyr in self.project.mapLayers().values() if lyr.type() == QgsMapLayerType.RasterLayer
                   and lyr.providerType() == "gdal" and not lyr.customProperty(OUTPUT_PROPERTY)]
        rasters.sort(key=lambda lyr: lyr.name())
        is_s1 = {lyr.id(): looks_like_s1(lyr) for lyr in rasters}
        is_s2 = {lyr.id(): not is_s1[lyr.id()] and looks_like_s2(lyr) for lyr in rasters}
        any_s2 = any(is_s2.values())
        show_all = self.all_rasters.isChecked()
        for lst in (self.s2_list, self.s1_list):
            likely = is_s1 if lst is self.s1_list else {k: not v for k, v in is_s1.items()}
            shown = [lyr for lyr in rasters if show_all or likely[lyr.id()]]
            shown.sort(key=lambda lyr, likely=likely: not likely[lyr.id()])
            lst.blockSignals(True)
            lst.clear()
            for layer in shown:
                names_ = band_names(layer)
                text = ", ".join(names_[:13]) + (" …" if len(names_) > 13 else "")
                item = QListWidgetItem(tr("{layer} — {n} band(s): {bands}").format(
                    layer=layer.name(), n=len(names_), bands=text))
                item.setData(Qt.ItemDataRole.UserRole, layer.id())
                item.setToolTip(layer.source())
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                if first:
                    state = is_s1[layer.id()] if lst is self.s1_list else (
                        is_s2[layer.id()] if any_s2 else not is_s1[layer.id()])
                else:
                    state = layer.id() in checked[lst]
                item.setCheckState(Qt.CheckState.Checked if state else Qt.CheckState.Unchecked)
                lst.addItem(item)
            lst.blockSignals(False)
        self._update_variant_hint()

    @staticmethod
    def checked_layer_ids(lst: QListWidget) -> list[str]:
        return [lst.item(i).data(Qt.ItemDataRole.UserRole) for i in range(lst.count())
                if lst.item(i).checkState() == Qt.CheckState.Checked]

    def set_checked_layers(self, lst: QListWidget, layer_ids: list[str]) -> None:
        for i in range(lst.count()):
            item = lst.item(i)
            checked = item.data(Qt.ItemDataRole.UserRole) in layer_ids
            item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)

    def listed_layer_ids(self, lst: QListWidget) -> list[str]:
        return [lst.item(i).data(Qt.ItemDataRole.UserRole) for i in range(lst.count())]

    # == the pre-training variant ==================================================================================
    def resolved_variant(self) -> str:
        """The RS-BYOL variant this run uses: 'auto' becomes 'single' with Sentinel-1 layers, else 's2-only'."""
        variant = self.variant.currentText()
        if variant == "auto":
            return "single" if self.checked_layer_ids(self.s1_list) else "s2-only"
        return variant

    def _update_variant_hint(self, *_args) -> None:
        if not hasattr(self, "variant_hint"):
            return
        rs = self.method.currentText() == "rs-byol"
        self.variant.setEnabled(rs)
        if not rs:
            self.variant_hint.setText("")
            return
        has_s1 = bool(self.checked_layer_ids(self.s1_list))
        variant = self.variant.currentText()
        if variant == "auto":
            text = tr("auto: 'single' (a Sentinel-2 band against a Sentinel-1 polarisation), as Sentinel-1 layers "
                      "are checked.") if has_s1 else tr(
                "auto: 's2-only' (two Sentinel-2 band draws), as no Sentinel-1 layer is checked.")
        elif variant in S1_VARIANTS and not has_s1:
            text = f"<span style='color:#b00'>{html.escape(self.s1_variant_problem(variant))}</span>"
        else:
            text = ""
        self.variant_hint.setText(text)

    @staticmethod
    def s1_variant_problem(variant: str) -> str:
        return tr("The RS-BYOL variant '{variant}' pairs Sentinel-2 with Sentinel-1, and no Sentinel-1 layer is "
                  "checked on the Data tab: check one, or choose the variant 'auto' or 's2-only'.").format(
            variant=variant)

    # == environment ===============================================================================================
    def check_environment(self) -> None:
        """Start the backend probe in the background; fills the device choice when it ends."""
        if self.probe_task is not None:
            return

        def done(task: tasks.CallTask) -> None:
            if sip.isdeleted(self):
                return
            self.probe_task = None
            if task.result is None:
                self.device_label.setText(tr("The backend check failed: {error}").format(error=task.error))
            else:
                self.set_backend_report(task.result)

        self.probe_task = tasks.start(tr("eo-ssl: checking the backend environment"),
                                      lambda _task: settings.probe_backend(), done)

    def _open_setup(self) -> None:
        if self.open_setup is not None:
            self.open_setup()
        else:
            from .setup_panel import BackendSetupDialog

            dlg = BackendSetupDialog(self)
            dlg.backendReady.connect(self.set_backend_report)
            dlg.show()
            self._setup = dlg

    def show_diagnostics(self) -> None:
        from .diagnostics import DiagnosticsDialog

        dlg = DiagnosticsDialog(self, open_setup=self._open_setup)
        dlg.reportReady.connect(self.set_backend_report)
        dlg.show()
        self._diagnostics = dlg

    def _select_default_device(self) -> None:
        index = self.device.findData(settings.device())
        self.device.setCurrentIndex(index if index >= 0 else 0)

    def set_backend_report(self, report) -> None:
        self.backend_report = report
        if report is None:
            return
        chosen = self.device.currentData()
        while self.device.count() > 2:
            self.device.removeItem(2)
        self.setup_button.setVisible(not report.ok)
        if not report.ok:
            self.device_label.setText("<span style='color:#b00'>{}</span><br>{}".format(
                html.escape(report.summary()), html.escape(tr(
                    "Click '{setup}' to create the backend environment or choose an existing Python.").format(
                    setup=tr(names.SETUP_ACTION)))))
            return
        info = report.info
        if info.get("device") == "cuda":
            self.device.addItem(tr("1 GPU: {name}").format(name=info.get("device_name")), "1")
            for n in range(2, int(info.get("device_count") or 1) + 1):
                self.device.addItem(tr("{n} GPUs (data-parallel)").format(n=n), str(n))
        # what is chosen stays (the user's choice; a default device of the settings such as "2" GPUs exists only now)
        want = settings.device() if chosen == "auto" else chosen
        index = self.device.findData(want)
        self.device.setCurrentIndex(index if index >= 0 else max(self.device.findData(chosen), 0))
        self.device_label.setText(html.escape(report.summary()))

    # == the job ===================================================================================================
    def _on_parcels_changed(self, layer) -> None:
        """A parcels layer: its class field guessed (never ``fid``), and, the first time one is chosen, the few-label
        map's steps ticked (fine-tune the pixel classifier, predict, compare report; pre-training one tick away)."""
        self.class_field.setLayer(layer)
        self.class_field.setField(class_field_of(layer) or "")
        had = self._parcels_seen is not None
        self._parcels_seen = layer
        if layer is not None and not had:
            for name, on in FEW_LABEL_STEPS.items():
                getattr(self, f"step_{name}").setChecked(on)
            self.ft_model.setCurrentIndex(max(self.ft_model.findData("pixel"), 0))
        self._update_steps()

    def _update_model_fields(self, *_args) -> None:
        pixel = (self.ft_model.currentData() or "pixel") == "pixel"
        self.quick.setEnabled(pixel)
        self.ft_epochs.setEnabled(not pixel)

    def _update_steps(self, *_args) -> None:
        if not hasattr(self, "model_package"):
            return
        has_parcels = self.parcels_layer.currentLayer() is not None
        for cb in (self.step_finetune, self.step_label):
            cb.setEnabled(has_parcels)
            if not has_parcels:
                cb.setChecked(False)
        self.step_evaluate.setEnabled(has_parcels)  # compare: the classic classifiers and random init at least
        if not self.step_evaluate.isEnabled():
            self.step_evaluate.setChecked(False)
        model_text = self.model_package.filePath().strip()
        # a model folder typed or picked keeps Predict available: a wrong one is said out loud, not greyed out
        can_predict = (has_parcels and self.step_finetune.isChecked()) or bool(model_text)
        self.step_predict.setEnabled(can_predict)
        if not self.step_predict.isEnabled():
            self.step_predict.setChecked(False)
        if not self.step_predict.isChecked():
            self.step_label.setChecked(False)
            self.step_label.setEnabled(False)
        problem = model_problem(model_text) if not self.step_finetune.isChecked() else None
        self.model_hint.setText(f"<span style='color:#b00'>{html.escape(problem)}</span>" if problem else "")
        self.model_hint.setVisible(bool(problem))

    def existing_model(self) -> Path | None:
        """The model package chosen to predict with (instead of fine-tuning in this run), if any."""
        text = self.model_package.filePath().strip() if hasattr(self, "model_package") else ""
        return Path(text) if text and model_problem(text) is None else None

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
            raise ValueError(tr("There is no map canvas to take the extent from."))
        canvas = self.iface.mapCanvas()
        e = canvas.extent()
        crs: QgsCoordinateReferenceSystem = canvas.mapSettings().destinationCrs()
        return f"{e.xMinimum()},{e.xMaximum()},{e.yMinimum()},{e.yMaximum()} [{crs.authid() or crs.toWkt()}]"

    def inputs_description(self, inputs: dict[str, Any], parcels, field: str) -> dict[str, Any]:
        """What the chip store is prepared from (:mod:`.chipstores`); raises NotReusable for an input that cannot
        be fingerprinted."""
        def layers(ids: list[str]) -> list[dict]:
            return [chipstores.layer_signature(self.project.mapLayer(i)) for i in ids]

        description: dict[str, Any] = {"s2": layers(inputs["S2"]), "s1": layers(inputs.get("S1", [])),
                                       "poi": [inputs.get("POI_START"), inputs.get("POI_END")],
                                       "extent": inputs.get("EXTENT")}
        aoi = inputs.get("AOI")
        if aoi is not None:
            layer = self.aoi_layer.currentLayer()
            description["aoi"] = chipstores.layer_signature(layer)
            if aoi.selectedFeaturesOnly:
                description["aoi"]["selected"] = sorted(layer.selectedFeatureIds())
        if parcels is not None and field:
            description["parcels"] = {**chipstores.layer_signature(parcels), "class_field": field}
        return description

    def chip_store_for(self, inputs: dict[str, Any], parcels, field: str,
                       out: Path) -> tuple[Path, dict | None, dict | None]:
        """(where the chip store of these inputs lives, its manifest when it is complete already and is reused, what
        it is prepared from). Inputs that cannot be fingerprinted get a store in the output folder, prepared every
        time."""
        try:
            description = self.inputs_description(inputs, parcels, field)
        except (chipstores.NotReusable, OSError) as exc:
            self.append_log(tr("The chip store is prepared again ({why}).").format(why=exc), "info")
            return out / "chips", None, None
        store = chipstores.store_path(settings.cache_dir(), chipstores.key(description))
        return store, chipstores.existing(store), description

    def choices(self, chips: Path | None = None, store_ready: bool = False) -> Choices:
        """What the widgets say (:class:`.dialog_plan.Choices`)."""
        parcels = self.parcels_layer.currentLayer()
        pretrain_rs = self.method.currentText() == "rs-byol"
        variant = self.resolved_variant() if pretrain_rs else None
        return Choices(
            out=self.output_dir.filePath().strip(), inputs=self._input_params(), chips=chips or Path(),
            store_ready=store_ready, device=self.device.currentData() or "auto",
            parcels=parcels.id() if parcels is not None else None, class_field=self.class_field.currentField(),
            pretrain=self.step_pretrain.isChecked(), finetune=self.step_finetune.isChecked(),
            evaluate=self.step_evaluate.isChecked(), predict=self.step_predict.isChecked(),
            label=self.step_label.isChecked(), method=self.method.currentText(), variant=variant,
            s1_variant_problem=(self.s1_variant_problem(variant) if variant in S1_VARIANTS
                                and not self.checked_layer_ids(self.s1_list) else None),
            encoder=self.encoder.currentText().strip(), epochs=self.epochs.value(),
            max_steps=spin_value(self.max_steps), batch_size=spin_value(self.batch_size), crop=self.crop.value(),
            resume=self.resume.isChecked(), arch=self.ft_model.currentData() or "pixel",
            quick=self.quick.isChecked(), ft_epochs=self.ft_epochs.value(),
            label_fraction=self.label_fraction.value(), tile=spin_value(self.tile),
            model=self.model_package.filePath().strip())

    def build_steps(self) -> list[Step]:
        """The algorithm runs for the current choices (raises ValueError with a message for the user)."""
        c = self.choices()
        plan_steps(c, self.project)  # the checks first: nothing is fingerprinted for choices that cannot run
        parcels = self.parcels_layer.currentLayer()
        chips, manifest, description = self.chip_store_for(c.inputs, parcels, c.class_field, Path(c.out))
        self.chip_store, self.reused_store = chips, manifest
        self._description = (chips, description) if description is not None and manifest is None else None
        c.chips, c.store_ready = chips, manifest is not None
        return plan_steps(c, self.project)

    def start_job(self) -> bool:
        if self.job is not None and self.job.running:
            return False
        self.log_view.clear()  # each run has its own log, followed from its first line
        try:
            steps = self.build_steps()
        except ValueError as exc:
            self.append_log(str(exc), "error")
            self.stage_label.setText("<b style='color:#b00'>{}</b> {}".format(tr("Cannot start:"),
                                                                             html.escape(str(exc))))
            return False
        out = Path(self.output_dir.filePath())
        out.mkdir(parents=True, exist_ok=True)
        settings.put(settings.SETTINGS_LAST_OUTPUT, str(out))
        if self._description is not None:
            with contextlib.suppress(OSError):
                chipstores.remember(*self._description)
        self.loss_plot.clear()
        self.progress.setValue(0)
        self.progress.setFormat("%p%")
        self.report_label.setText("")
        self.report_path = None
        self.append_log(tr("Output folder: {path}").format(path=out), "info")
        if self.reused_store is not None:
            self.append_log(tr("Prepare data: reusing the chip store {path} (prepared {when} from the same layers, "
                               "area and period).").format(path=self.chip_store,
                                                           when=self.reused_store.get("provenance", {}).get(
                                                               "created", "?")), "info")
        if not steps:
            message = tr("Nothing to run: the chip store is ready ({path}). Tick a step on the Training tab "
                         "(Fine-tune, Predict…) to go on.").format(path=self.chip_store)
            self._on_job_finished(True, message)
            self.stage_label.setText(f"<b>{html.escape(message)}</b>")  # not a success in green: nothing ran
            return True
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
        self.job.start()
        return True

    def cancel_job(self) -> None:
        if self.job is not None and self.job.running:
            self.job.cancel()
            self.cancel_button.setEnabled(False)

    def _on_step_started(self, index: int, title: str) -> None:
        total = len(self.job.steps) if self.job else 1
        self.stage_label.setText("<b>{}</b>".format(html.escape(tr("Step {k}/{n}: {title}").format(
            k=index + 1, n=total, title=title))))
        # the previous step's text goes at once (the next backend needs seconds to send its first progress)
        self.progress.setValue(0)
        self.progress.setFormat("%p%  " + tr("starting…"))
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
            self.report_label.setText("{} <a href=\"{}\">{}</a>".format(tr("Report:"), url,
                                                                      html.escape(self.report_path)))

    def _on_job_finished(self, ok: bool, message: str) -> None:
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.tabs.setEnabled(True)
        if ok:
            self.progress.setValue(100)
        self.progress.setFormat("%p%")
        self.eta_label.setText("")
        colour = "#1a7f37" if ok else "#b00"
        self.stage_label.setText(f"<b style='color:{colour}'>{html.escape(message)}</b>")
        self.append_log(message, "info" if ok else "error")
        self.log_view.show_end()  # the outcome (and an error above it) in sight, even after scrolling up
        self.jobFinished.emit(ok, message)

    def append_log(self, text: str, level: str = "info") -> None:
        prefix = {"warning": "⚠ ", "error": "✖ ", "step": "", "debug": "· "}.get(level, "")
        for line in str(text).splitlines() or [""]:
            self.log_view.append_line(prefix + line)

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
