"""7 Export dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qgis.core import (
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingOutputFile,
    QgsProcessingOutputNumber,
    QgsProcessingOutputVectorLayer,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterString,
)

from .. import backend_spec as spec
from ..i18n import tr
from ..names import QT_TRANSLATE_NOOP
from . import inputs
from .backend_run import artifacts
from .base import BackendAlgorithm
from .inputs import advanced, with_help
from .parameters import (
    ATTRIBUTION,
    BLOCK_SIZE,
    CHIP,
    DATA,
    DATES,
    ID_FIELD,
    MAX_CHIPS_PER_PARCEL,
    OUTPUT,
    OVERWRITE,
    OWN_OVERWRITE,
    PARCELS,
    SEED,
    SENSORS,
    SPLIT,
    STATUS,
    TEST_FRACTION,
    VAL_FRACTION,
)
from .parcel_inputs import PARCEL_OPTIONS, SPLIT_OPTIONS, parcels_options, parcels_parameters, split_parameters


class ExportDatasetAlgorithm(BackendAlgorithm):
    COMMAND = "export-dataset"
    DISPLAY = QT_TRANSLATE_NOOP("@default", "7 Export dataset")
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
               **PARCEL_OPTIONS,
               ID_FIELD: ("--id-field",), STATUS: ("--status",), DATES: ("--dates",), SENSORS: ("--sensors",),
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
        parcels_parameters(self, False, "Attribute holding the class (class_name after Label parcels).")
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
        split_parameters(self, advanced_split=False)
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
        options.update(parcels_options(self, parameters, context, feedback))
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
