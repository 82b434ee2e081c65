"""1 Prepare data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterString,
)

from .. import backend_spec as spec
from ..i18n import tr
from ..names import QT_TRANSLATE_NOOP
from . import inputs
from .base import BackendAlgorithm
from .inputs import advanced
from .parameters import (
    BLOCK_SIZE,
    CHIP_BANDS,
    CHIPS,
    OUTPUT,
    OVERWRITE,
    OWN_OVERWRITE,
    SEED,
    SPLIT,
    TEST_FRACTION,
    VAL_FRACTION,
    WINDOW,
)
from .parcel_inputs import PARCEL_OPTIONS, SPLIT_OPTIONS, parcels_options, parcels_parameters, split_parameters


class PrepareAlgorithm(BackendAlgorithm):
    COMMAND = "prepare"
    DISPLAY = QT_TRANSLATE_NOOP("@default", "1 Prepare data")
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
        parcels_parameters(self, True, "Attribute holding the class of each parcel (text or integer).")
        split_parameters(self, advanced_split=True)
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
            options.update(parcels_options(self, parameters, context, feedback))
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


