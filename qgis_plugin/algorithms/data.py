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
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from ..i18n import tr
from ..names import QT_TRANSLATE_NOOP
from . import inputs
from .base import BackendAlgorithm, artifacts

SPLITS = ["by-parcel", "by-block"]


def _parcels_parameters(alg, optional: bool, field_help: str) -> None:
    alg.addParameter(inputs.with_help(QgsProcessingParameterFeatureSource(
        "PARCELS", "Labelled parcels (polygons with a class attribute)", [QgsProcessing.TypeVectorPolygon],
        optional=optional), "Polygons with a class attribute, any CRS. 'Selected features only' uses the selection."))
    alg.addParameter(inputs.with_help(QgsProcessingParameterField(
        "CLASS_FIELD", "Class field", parentLayerParameterName="PARCELS", optional=optional), field_help))


def _parcels_options(alg, parameters, context, feedback) -> dict[str, Any]:
    parcels = inputs.vector_file(alg, parameters, "PARCELS", context, feedback)
    field = alg.parameterAsString(parameters, "CLASS_FIELD", context) if parameters.get("CLASS_FIELD") else ""
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

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API
        inputs.raster_input_parameters(self, s2_optional=True)
        _parcels_parameters(self, True, "Attribute holding the class of each parcel (text or integer).")
        self.addParameter(inputs.advanced(QgsProcessingParameterEnum(
            "SPLIT", "Train/validation/test split", SPLITS, defaultValue="by-parcel", usesStaticStrings=True)))
        self.addParameter(inputs.advanced(QgsProcessingParameterNumber(
            "VAL_FRACTION", "Validation fraction", QgsProcessingParameterNumber.Double, 0.15, minValue=0.0,
            maxValue=0.9)))
        self.addParameter(inputs.advanced(QgsProcessingParameterNumber(
            "TEST_FRACTION", "Test fraction", QgsProcessingParameterNumber.Double, 0.15, minValue=0.0, maxValue=0.9)))
        self.addParameter(inputs.advanced(QgsProcessingParameterNumber(
            "SEED", "Random seed of the split", QgsProcessingParameterNumber.Integer, 0, minValue=0)))
        self.addParameter(inputs.advanced(QgsProcessingParameterFile(
            "CHIPS", "EuroSAT-style chip folder DIR/<Class>/*.tif (instead of scenes)",
            behavior=QgsProcessingParameterFile.Folder, optional=True)))
        self.addParameter(QgsProcessingParameterBoolean("OVERWRITE", "Replace the output folder if it exists",
                                                        defaultValue=True))
        self.add_extra_args_parameter()
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT", "Chip store (output folder)"))
        self.addOutput(QgsProcessingOutputString("GRID", "Grid"))
        self.addOutput(QgsProcessingOutputNumber("CLASSES", "Number of classes"))

    def checkParameterValues(self, parameters, context: QgsProcessingContext):  # noqa: N802 - QGIS API
        has_s2 = parameters.get(inputs.S2) not in (None, "", []) or parameters.get(inputs.S2_FOLDER) not in (None, "")
        has_chips = parameters.get("CHIPS") not in (None, "")
        if not has_s2 and not has_chips:
            return False, tr("Give Sentinel-2 scenes (layers or a folder), or a chip folder.")
        if has_s2 and has_chips:
            return False, tr("Give Sentinel-2 scenes or a chip folder, not both.")
        return super().checkParameterValues(parameters, context)

    def backend_options(self, parameters, context, feedback) -> dict[str, Any]:
        out = inputs.folder_output(self, parameters, "OUTPUT", context)
        chips = self.parameterAsFile(parameters, "CHIPS", context) if parameters.get("CHIPS") else ""
        if chips:
            options: dict[str, Any] = {"chips": chips}
        else:
            options = inputs.raster_input_options(self, parameters, context, feedback)
            options.update(_parcels_options(self, parameters, context, feedback))
            if "parcels" in options:
                options["split"] = self.parameterAsEnumString(parameters, "SPLIT", context) or "by-parcel"
        if "parcels" in options or chips:
            options["val_fraction"] = self.parameterAsDouble(parameters, "VAL_FRACTION", context)
            options["test_fraction"] = self.parameterAsDouble(parameters, "TEST_FRACTION", context)
            options["seed"] = self.parameterAsInt(parameters, "SEED", context)
        options["out"] = out
        options["overwrite"] = self.parameterAsBool(parameters, "OVERWRITE", context)
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

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API
        self.addParameter(QgsProcessingParameterFile(
            "DATA", "Chip store (from Prepare data) — or give scenes below", behavior=QgsProcessingParameterFile.Folder,
            optional=True))
        inputs.raster_input_parameters(self, s2_optional=True)
        _parcels_parameters(self, False, "Attribute holding the class (class_name after Label parcels).")
        self.addParameter(QgsProcessingParameterField("ID_FIELD", "Parcel id field (for the index)",
                                                      parentLayerParameterName="PARCELS", optional=True))
        self.addParameter(inputs.with_help(QgsProcessingParameterString(
            "STATUS", "Only parcels with this status (comma-separated; empty: the backend's default)",
            defaultValue="labelled", optional=True),
            "With a label-parcels output: 'labelled' keeps the parcels the map labelled confidently and those you "
            "labelled by hand; the backend's default is 'labelled' when the layer has a status field."))
        self.addParameter(inputs.with_help(QgsProcessingParameterString(
            "DATES", "Dates per chip: all, median, or YYYY-MM-DD,... (empty: the backend's default)",
            optional=True), "all: one channel per date and band; median: per-band median of the valid dates; "
            "dates: each sensor's nearest acquisition."))
        self.addParameter(inputs.advanced(QgsProcessingParameterString(
            "SENSORS", "Sensors to export (e.g. s2 or s2,s1; empty: every sensor given)", optional=True)))
        self.addParameter(QgsProcessingParameterNumber(
            "CHIP", "Chip size (pixels)", QgsProcessingParameterNumber.Integer, 64, minValue=8, maxValue=1024))
        self.addParameter(QgsProcessingParameterEnum(
            "SPLIT", "Train/validation/test split", SPLITS, defaultValue="by-parcel", usesStaticStrings=True))
        self.addParameter(QgsProcessingParameterBoolean("OVERWRITE", "Replace the output folder if it exists",
                                                        defaultValue=True))
        self.add_extra_args_parameter()
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT", "Dataset (output folder)"))
        self.addOutput(QgsProcessingOutputVectorLayer("INDEX", "Chip index", QgsProcessing.TypeVectorPolygon))
        self.addOutput(QgsProcessingOutputFile("DATASET_JSON", "dataset.json"))
        self.addOutput(QgsProcessingOutputNumber("CHIPS", "Number of chips"))

    def checkParameterValues(self, parameters, context):  # noqa: N802 - QGIS API
        has_data = parameters.get("DATA") not in (None, "")
        has_s2 = parameters.get(inputs.S2) not in (None, "", []) or parameters.get(inputs.S2_FOLDER) not in (None, "")
        if has_data == has_s2:
            return False, tr("Give either a chip store or Sentinel-2 scenes (one of the two).")
        return super().checkParameterValues(parameters, context)

    def backend_options(self, parameters, context, feedback) -> dict[str, Any]:
        out = inputs.folder_output(self, parameters, "OUTPUT", context)
        if parameters.get("DATA") not in (None, ""):
            options: dict[str, Any] = {"data": self.parameterAsFile(parameters, "DATA", context)}
        else:
            options = inputs.raster_input_options(self, parameters, context, feedback)
        options.update(_parcels_options(self, parameters, context, feedback))
        for name in ("STATUS", "DATES", "SENSORS"):
            value = self.parameterAsString(parameters, name, context).strip() if parameters.get(name) else ""
            if value:
                options[name.lower()] = value.replace(" ", "")
        if parameters.get("ID_FIELD") not in (None, ""):
            options["id_field"] = self.parameterAsString(parameters, "ID_FIELD", context) or None
        options["chip"] = self.parameterAsInt(parameters, "CHIP", context)
        options["split"] = self.parameterAsEnumString(parameters, "SPLIT", context) or "by-parcel"
        options["out"] = out
        options["overwrite"] = self.parameterAsBool(parameters, "OVERWRITE", context)
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
