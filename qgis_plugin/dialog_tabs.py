"""The toolbar dialog's layout: its Data, Training and Output tabs and the run panel (:class:`DialogTabs`, the part
of :class:`.dialog.EoSslDialog` that builds widgets; what they do is in :mod:`.dialog`).

Why this length: Qt's widget set-up is long by nature (each widget, its tooltip, its range from the backend's option
spec), and the three tabs are one form.
"""

from __future__ import annotations

import html
from pathlib import Path

from qgis.gui import QgsFieldComboBox, QgsFileWidget
from qgis.PyQt.QtCore import QDate, Qt, QUrl
from qgis.PyQt.QtGui import QDesktopServices
from qgis.PyQt.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateEdit,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from . import backend_spec, names, settings
from .algorithms.pretrain import CLI_ONLY_METHODS, ENCODERS
from .dialog_widgets import layer_list, narrow, polygon_layer_combo, scrolled, spin_box
from .i18n import tr
from .log_view import FollowingLog
from .loss_plot import LossPlot


class DialogTabs:
    """The widgets of :class:`.dialog.EoSslDialog`, built by :meth:`_build`; the slots they connect to
    (``_update_steps``, ``refresh_layers``...) are the dialog's."""

    def _build(self) -> None:
        root = QVBoxLayout(self)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        root.addWidget(splitter, 1)
        self.tabs = QTabWidget()
        splitter.addWidget(self.tabs)
        for page, title in ((self._inputs_tab(), tr("Data")), (self._training_tab(), tr("Training")),
                            (self._output_tab(), tr("Output"))):
            self.tabs.addTab(scrolled(page), title)
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

    def _inputs_tab(self) -> QWidget:
        w = QWidget()
        lay = QVBoxLayout(w)
        box = QGroupBox(tr("Sentinel-2 scenes (check the ones to use)"))
        bl = QVBoxLayout(box)
        self.s2_list = layer_list(self._update_variant_hint)
        bl.addWidget(self.s2_list)
        lay.addWidget(box, 2)
        box = QGroupBox(tr("Sentinel-1 scenes (optional; VV/VH)"))
        bl = QVBoxLayout(box)
        self.s1_list = layer_list(self._update_variant_hint)
        bl.addWidget(self.s1_list)
        self.all_rasters = QCheckBox(tr("Show all raster layers"))
        self.all_rasters.setToolTip(tr("Not only those that look like Sentinel-1 or -2. Sentinel-1 layers are "
                                       "recognised by their VV/VH bands or a name with S1, GRD, VV or VH; the "
                                       "Sentinel-2 list leaves them out."))
        self.all_rasters.toggled.connect(lambda _on: self.refresh_layers())
        bl.addWidget(self.all_rasters)
        lay.addWidget(box, 1)

        box = QGroupBox(tr("Feature rasters (optional; an embedding: AlphaEarth, TESSERA, eo-ssl Embed)"))
        bl = QVBoxLayout(box)
        self.features_list = layer_list(self._update_variant_hint)
        self.features_list.setToolTip(tr("Per-pixel features beside the scenes, or alone: prepared onto the grid as "
                                         "Sentinel-1 (prepare --features) and read again for the map (predict "
                                         "--features)."))
        bl.addWidget(self.features_list)
        hl = QHBoxLayout()
        hl.addWidget(QLabel(tr("Encoding")))
        self.features_preset = narrow(QComboBox(), 10)
        self.features_preset.addItems(backend_spec.choices("prepare", "--features-preset"))
        self.features_preset.setCurrentText(backend_spec.default("prepare", "--features-preset"))
        self.features_preset.setToolTip(backend_spec.option("prepare", "--features-preset")["help"])
        hl.addWidget(self.features_preset)
        hl.addStretch(1)
        bl.addLayout(hl)
        lay.addWidget(box, 1)

        box = QGroupBox(tr("Area of interest"))
        gl = QGridLayout(box)
        self.aoi_layer_radio = QRadioButton(tr("Polygon layer"))
        self.aoi_extent_radio = QRadioButton(tr("Current map extent"))
        self.aoi_all_radio = QRadioButton(tr("Whole Sentinel-2 footprint"))
        self.aoi_all_radio.setChecked(True)
        self.aoi_layer = polygon_layer_combo()
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
        self.parcels_layer = polygon_layer_combo()
        self.class_field = narrow(QgsFieldComboBox())
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
        # the backend's choices hold 'auto' (its default); first either way
        self.variant.addItems(list(dict.fromkeys([backend_spec.AUTO, *backend_spec.choices("pretrain", "--variant")])))
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
        self.tile.setToolTip(tr("Empty (the model's): {tile} for a segmentation model, a classifier's chip "
                                "size.").format(tile=backend_spec.input_default("tile_of_segmentation")))
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
        self.device = narrow(QComboBox(), 12)
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

