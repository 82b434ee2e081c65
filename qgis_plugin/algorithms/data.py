"""1 Prepare data, 7 Export dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qgis.core import (
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingOutputFile,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingOutputVectorLayer,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterString,
)

from .. import backend_spec as spec
from ..i18n import tr
from ..names import QT_TRANSLATE_NOOP
from . import inputs
from .base import BackendAlgorithm, artifacts
from .inputs import advanced, with_help

# parameter names
PARCELS = "PARCELS"
CLASS_FIELD = "CLASS_FIELD"
ID_FIELD = "ID_FIELD"
SPLIT = "SPLIT"
BLOCK_SIZE = "BLOCK_SIZE"
VAL_FRACTION = "VAL_FRACTION"
TEST_FRACTION = "TEST_FRACTION"
SEED = "SEED"
CHIPS = "CHIPS"
CHIP_BANDS = "CHIP_BANDS"
WINDOW = "WINDOW"
OVERWRITE = "OVERWRITE"
OUTPUT = "OUTPUT"
DATA = "DATA"
STATUS = "STATUS"
DATES = "DATES"
SENSORS = "SENSORS"
CHIP = "CHIP"
MAX_CHIPS_PER_PARCEL = "MAX_CHIPS_PER_PARCEL"
ATTRIBUTION = "ATTRIBUTION"

PARCEL_OPTIONS = {PARCELS: ("--parcels", "--parcels-layer"), CLASS_FIELD: ("--class-field",)}
#: parameters named as their option (``BLOCK_SIZE`` -> ``--block-size``)
SPLIT_OPTIONS = {name: ("--" + name.lower().replace("_", "-"),) for name in (SPLIT, BLOCK_SIZE, VAL_FRACTION,
                                                                              TEST_FRACTION, SEED)}
OWN_OVERWRITE = {OVERWRITE: "a Processing output is replaced by default, as QGIS's own algorithms do"}


def _split_parameters(alg, advanced_split: bool) -> None:
    c = alg.COMMAND
    split = spec.enum(SPLIT, "Train/validation/test split", c, "--split")
    alg.addParameter(advanced(split) if advanced_split else split)
    alg.addParameter(advanced(spec.number(BLOCK_SIZE, "Block size (metres, split by block)", c, "--block-size")))
    alg.addParameter(advanced(spec.number(VAL_FRACTION, "Validation fraction", c, "--val-fraction")))
    alg.addParameter(advanced(spec.number(TEST_FRACTION, "Test fraction", c, "--test-fraction")))
    alg.addParameter(advanced(spec.number(SEED, "Random seed of the split", c, "--seed")))


def _parcels_parameters(alg, optional: bool, field_help: str) -> None:
    alg.addParameter(with_help(QgsProcessingParameterFeatureSource(
        PARCELS, "Labelled parcels (polygons with a class attribute)", [QgsProcessing.TypeVectorPolygon],
        optional=optional), "Polygons with a class attribute, any CRS. 'Selected features only' uses the selection."))
    alg.addParameter(with_help(QgsProcessingParameterField(
        CLASS_FIELD, "Class field", parentLayerParameterName=PARCELS, optional=optional), field_help))


def _parcels_options(alg, parameters, context, feedback) -> dict[str, Any]:
    parcels = inputs.vector_file(alg, parameters, PARCELS, context, feedback)
    field = alg.parameterAsString(parameters, CLASS_FIELD, context) if parameters.get(CLASS_FIELD) else ""
    if bool(parcels) != bool(field):
        raise QgsProcessingException(tr("Give the labelled parcels and their class field together (or neither)."))
    if not parcels:
        return {}
    options: dict[str, Any] = {"parcels": parcels[0], "class_field": field}
    if parcels[1]:
        options["parcels_layer"] = parcels[1]
    return options


class PrepareAlgorithm(BackendAlgorithm):
    COMMAND = "prepare"
    NAME = "prepare"
    DISPLAY = QT_TRANSLATE_NOOP("@default", "1 Prepare data")
    GROUP = QT_TRANSLATE_NOOP("@default", "1 Data")
    GROUP_ID = "data"
    HELP = QT_TRANSLATE_NOOP(
        "@default",
        "<p>Builds a <b>chip store</b> (the training format) from Sentinel-2 (and optionally Sentinel-1) scenes over "
        "an area and a period of interest: every scene is read window by window onto one 10 m grid (Sentinel-1 "
        "reprojected, kept in dB), with normalisation statistics and, when labelled parcels are given, the "
        "rasterised labels and a train/validation/test split by parcel or by spatial block (never by pixel).</p>"
        "<p>Instead of scenes, a EuroSAT-style chip folder (<code>DIR/&lt;Class&gt;/*.tif</code>) can be given.</p>"
        "<p>The output folder feeds <i>Pre-train</i>, <i>Fine-tune</i> and <i>Evaluate</i>.</p>")

    OPTIONS = {**inputs.INPUT_OPTIONS, **inputs.FEATURE_OPTIONS, **inputs.GRID_OPTIONS, **PARCEL_OPTIONS,
               **SPLIT_OPTIONS, CHIPS: ("--chips",), CHIP_BANDS: ("--chip-bands",), WINDOW: ("--window",),
               OVERWRITE: ("--overwrite",), OUTPUT: ("--out",)}
    OWN_DEFAULTS = OWN_OVERWRITE

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API
        inputs.raster_input_parameters(self, s2_optional=True)
        inputs.feature_input_parameters(self)
        _parcels_parameters(self, True, "Attribute holding the class of each parcel (text or integer).")
        _split_parameters(self, advanced_split=True)
        self.addParameter(advanced(QgsProcessingParameterFile(
            CHIPS, "EuroSAT-style chip folder DIR/<Class>/*.tif (instead of scenes)",
            behavior=QgsProcessingParameterFile.Folder, optional=True)))
        self.addParameter(advanced(QgsProcessingParameterString(
            CHIP_BANDS, "Band order of the chips, comma-separated (empty: EuroSAT-MS's)", optional=True)))
        self.addParameter(advanced(spec.number(WINDOW, "Processing window (pixels; 0: from the memory budget)",
                                               self.COMMAND, "--window")))
        self.addParameter(QgsProcessingParameterBoolean(OVERWRITE, "Replace the output folder if it exists",
                                                        defaultValue=True))
        self.add_extra_args_parameter()
        self.addParameter(QgsProcessingParameterFolderDestination(OUTPUT, "Chip store (output folder)"))
        self.addOutput(QgsProcessingOutputString("GRID", "Grid"))
        self.addOutput(QgsProcessingOutputNumber("CLASSES", "Number of classes"))

    def checkParameterValues(self, parameters, context: QgsProcessingContext):  # noqa: N802 - QGIS API
        has_s2 = parameters.get(inputs.S2) not in (None, "", []) or parameters.get(inputs.S2_FOLDER) not in (None, "")
        has_s2 = has_s2 or inputs.has_features(parameters)  # feature rasters alone make a store too
        has_chips = parameters.get(CHIPS) not in (None, "")
        if not has_s2 and not has_chips:
            return False, tr("Give Sentinel-2 scenes (layers or a folder), feature rasters, or a chip folder.")
        if has_s2 and has_chips:
            return False, tr("Give Sentinel-2 scenes or a chip folder, not both.")
        return super().checkParameterValues(parameters, context)

    def backend_options(self, parameters, context, feedback) -> dict[str, Any]:
        out = inputs.folder_output(self, parameters, OUTPUT, context)
        chips = self.parameterAsFile(parameters, CHIPS, context) if parameters.get(CHIPS) else ""
        if chips:
            options: dict[str, Any] = {"chips": chips, **self.mapped_options(parameters, context, CHIP_BANDS)}
        else:
            options = inputs.raster_input_options(self, parameters, context, feedback,
                                                  s2_required=not inputs.has_features(parameters))
            options.update(inputs.feature_input_options(self, parameters, context))
            options.update(_parcels_options(self, parameters, context, feedback))
            if "parcels" in options:
                options.update(self.mapped_options(parameters, context, SPLIT, BLOCK_SIZE))
        if "parcels" in options or chips:
            options.update(self.mapped_options(parameters, context, VAL_FRACTION, TEST_FRACTION, SEED))
        options.update(self.mapped_options(parameters, context, WINDOW))
        options["out"] = out
        options["overwrite"] = self.parameterAsBool(parameters, OVERWRITE, context)
        return options

    def results(self, parameters, context, feedback) -> dict[str, Any]:
        out = self._options["out"]
        if not (Path(out) / "manifest.json").is_file():
            raise QgsProcessingException(tr("The backend finished but {out} holds no manifest.json.").format(out=out))
        s = self.summary()
        return {"OUTPUT": out, "GRID": str(s.get("grid", "")), "CLASSES": int(s.get("classes") or 0)}


class ExportDatasetAlgorithm(BackendAlgorithm):
    COMMAND = "export-dataset"
    NAME = "export_dataset"
    DISPLAY = QT_TRANSLATE_NOOP("@default", "7 Export dataset")
    GROUP = QT_TRANSLATE_NOOP("@default", "4 Parcels")
    GROUP_ID = "parcels"
    HELP = QT_TRANSLATE_NOOP(
        "@default",
        "<p>Writes a training dataset from labelled parcels: one georeferenced GeoTIFF chip per sample (all chosen "
        "bands), a mask GeoTIFF per chip (class ids, ignore value), <code>index.gpkg</code> (chip footprints with "
        "split, class counts and source parcels) and <code>dataset.json</code> (bands, dates, classes with colours, "
        "grid, normalisation, provenance). The imagery is a chip store (from <i>Prepare data</i>) or Sentinel "
        "scenes.</p><p>Typical input: the output of <i>Label parcels</i> with status 'labelled', or parcels you "
        "labelled by hand with the eo-ssl parcel labelling tool.</p>")

    OPTIONS = {DATA: ("--data",), **inputs.INPUT_OPTIONS, **inputs.FEATURE_OPTIONS, **inputs.GRID_OPTIONS,
               **PARCEL_OPTIONS, ID_FIELD: ("--id-field",), STATUS: ("--status",), DATES: ("--dates",),
               SENSORS: ("--sensors",),
               CHIP: ("--chip",), MAX_CHIPS_PER_PARCEL: ("--max-chips-per-parcel",), **SPLIT_OPTIONS,
               ATTRIBUTION: ("--attribution",), OVERWRITE: ("--overwrite",), OUTPUT: ("--out",)}
    OWN_DEFAULTS = OWN_OVERWRITE

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API
        c = self.COMMAND
        self.addParameter(QgsProcessingParameterFile(
            DATA, "Chip store (from Prepare data) — or give scenes below", behavior=QgsProcessingParameterFile.Folder,
            optional=True))
        inputs.raster_input_parameters(self, s2_optional=True)
        inputs.feature_input_parameters(self)
        _parcels_parameters(self, False, "Attribute holding the class (class_name after Label parcels).")
        self.addParameter(QgsProcessingParameterField(ID_FIELD, "Parcel id field (for the index)",
                                                      parentLayerParameterName=PARCELS, optional=True))
        self.addParameter(with_help(QgsProcessingParameterString(
            STATUS, "Only parcels with this status (comma-separated; empty: 'labelled' when the layer has a status "
            "field)", optional=True),
            "With a label-parcels output: 'labelled' keeps the parcels the map labelled confidently and those you "
            "labelled by hand."))
        self.addParameter(with_help(QgsProcessingParameterString(
            DATES, "Dates per chip: all, median, or YYYY-MM-DD,...", defaultValue=spec.default(c, "--dates"),
            optional=True), "all: one channel per date and band; median: per-band median of the valid dates; "
            "dates: each sensor's nearest acquisition."))
        self.addParameter(advanced(QgsProcessingParameterString(
            SENSORS, "Sensors to export (e.g. s2, s2,s1 or s2,features; empty: every sensor given)",
            optional=True)))
        self.addParameter(spec.number(CHIP, "Chip size (pixels)", c, "--chip"))
        self.addParameter(advanced(spec.number(MAX_CHIPS_PER_PARCEL, "Chips per parcel at most (0: no cap)", c,
                                               "--max-chips-per-parcel")))
        _split_parameters(self, advanced_split=False)
        self.addParameter(advanced(QgsProcessingParameterString(
            ATTRIBUTION, "Licence / attribution of the labels (written to dataset.json and ATTRIBUTION.md)",
            optional=True)))
        self.addParameter(QgsProcessingParameterBoolean(OVERWRITE, "Replace the output folder if it exists",
                                                        defaultValue=True))
        self.add_extra_args_parameter()
        self.addParameter(QgsProcessingParameterFolderDestination(OUTPUT, "Dataset (output folder)"))
        self.addOutput(QgsProcessingOutputVectorLayer("INDEX", "Chip index", QgsProcessing.TypeVectorPolygon))
        self.addOutput(QgsProcessingOutputFile("DATASET_JSON", "dataset.json"))
        self.addOutput(QgsProcessingOutputNumber("CHIPS", "Number of chips"))

    def checkParameterValues(self, parameters, context):  # noqa: N802 - QGIS API
        has_data = parameters.get(DATA) not in (None, "")
        has_s2 = parameters.get(inputs.S2) not in (None, "", []) or parameters.get(inputs.S2_FOLDER) not in (None, "")
        has_rasters = has_s2 or inputs.has_features(parameters)  # feature rasters alone export too
        if has_data == has_rasters:
            return False, tr("Give either a chip store or Sentinel-2 scenes / feature rasters (one of the two).")
        return super().checkParameterValues(parameters, context)

    def backend_options(self, parameters, context, feedback) -> dict[str, Any]:
        out = inputs.folder_output(self, parameters, OUTPUT, context)
        if parameters.get(DATA) not in (None, ""):
            options: dict[str, Any] = {"data": self.parameterAsFile(parameters, DATA, context)}
        else:
            options = inputs.raster_input_options(self, parameters, context, feedback,
                                                  s2_required=not inputs.has_features(parameters))
            options.update(inputs.feature_input_options(self, parameters, context))
        options.update(_parcels_options(self, parameters, context, feedback))
        options.update({k: v.replace(" ", "") for k, v in self.mapped_options(
            parameters, context, STATUS, DATES, SENSORS).items()})
        options.update(self.mapped_options(parameters, context, ID_FIELD, CHIP, MAX_CHIPS_PER_PARCEL, SPLIT,
                                           BLOCK_SIZE, VAL_FRACTION, TEST_FRACTION, SEED))
        attribution = self.mapped_options(parameters, context, ATTRIBUTION).get("attribution")
        if attribution:
            options["attribution"] = [attribution]
        options["out"] = out
        options["overwrite"] = self.parameterAsBool(parameters, OVERWRITE, context)
        return options

    def results(self, parameters, context, feedback) -> dict[str, Any]:
        out = Path(self._options["out"])
        index = next((p for p in artifacts(self._events) if p.endswith(".gpkg")), str(out / "index.gpkg"))
        if not Path(index).is_file():
            raise QgsProcessingException(tr("The backend finished but wrote no chip index ({index}).").format(
                index=index))
        s = self.summary()
        chips = s.get("chips", s.get("n_chips", 0))
        return {"OUTPUT": str(out), "INDEX": index, "DATASET_JSON": str(out / "dataset.json"),
                "CHIPS": int(chips) if isinstance(chips, (int, float)) else 0}

    def postProcessAlgorithm(self, context, feedback):  # noqa: N802 - QGIS API (main thread)
        index = str(Path(self._options.get("out", "")) / "index.gpkg")
        if Path(index).is_file() and context.project() is not None and not context.willLoadLayerOnCompletion(index):
            details = QgsProcessingContext.LayerDetails("Dataset chips (index)", context.project(), "INDEX")
            context.addLayerToLoadOnCompletion(index, details)
        return {}
