"""5b Per-pixel embedding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qgis.core import (
    QgsProcessingException,
    QgsProcessingParameterFile,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterString,
)

from .. import backend_spec as spec
from ..i18n import tr
from ..names import QT_TRANSLATE_NOOP
from . import inputs
from .base import BackendAlgorithm
from .inputs import advanced, with_help
from .model_inputs import model_folder, tiling_parameters
from .parameters import (
    BATCH_SIZE,
    DATE,
    DIM,
    DTYPE,
    LEVELS,
    MODEL,
    OUTPUT,
    OVERLAP,
    SAMPLE_WINDOWS,
    SEED,
    TILE,
    same_options,
)


class EmbedAlgorithm(BackendAlgorithm):
    COMMAND = "embed"
    DISPLAY = QT_TRANSLATE_NOOP("@default", "5b Per-pixel embedding")
    GROUP_ID = "mapping"
    HELP = QT_TRANSLATE_NOOP(
        "@default",
        "<p>Writes the per-pixel features of a pre-trained encoder (a package of Pre-train, or an imported one) as a "
        "multi-band raster on the analysis grid: the encoder's feature pyramid at full resolution, reduced to its "
        "first principal components. Feed it, alone or with the bands, to any classifier (QGIS's, SCP, dzetsaka), "
        "as with published satellite-embedding datasets.</p><p>Several dates: the embedding of their per-band "
        "median composite. 8-bit or 16-bit output is scaled per band (the scale and offset travel with the file).</p>")

    OPTIONS = {MODEL: ("--model",), **inputs.INPUT_OPTIONS,
               **same_options(DIM, LEVELS, DTYPE, DATE, TILE, OVERLAP, BATCH_SIZE, SAMPLE_WINDOWS, SEED),
               inputs.DEVICES: ("--devices",), OUTPUT: ("--out",)}
    CLI_ONLY = inputs.GRID_CLI_ONLY

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API
        c = self.COMMAND
        self.addParameter(with_help(QgsProcessingParameterFile(
            MODEL, "Encoder package (from Pre-train)", behavior=QgsProcessingParameterFile.Folder),
            "A folder holding weights.safetensors and model.json with a CNN encoder."))
        inputs.raster_input_parameters(self, s2_optional=False, with_grid=False)
        self.addParameter(with_help(spec.number(DIM, "Bands to keep (principal components; 0: every feature)", c,
                                                "--dim"),
                                    "16 components keep most of the variance of a ResNet-18 pyramid."))
        self.addParameter(spec.enum(DTYPE, "Data type", c, "--dtype"))
        self.addParameter(advanced(QgsProcessingParameterString(
            LEVELS, "Encoder pyramid levels (comma-separated)", defaultValue=spec.default(c, "--levels"),
            optional=True)))
        self.addParameter(advanced(QgsProcessingParameterString(
            DATE, "Sentinel-2 date to embed (YYYY-MM-DD; empty: the composite of every date)", optional=True)))
        tiling_parameters(self, "A multiple of 32.")
        self.addParameter(advanced(spec.number(SAMPLE_WINDOWS, "Windows the projection is fitted on", c,
                                               "--sample-windows")))
        self.addParameter(advanced(spec.number(SEED, "Random seed of those windows", c, "--seed")))
        inputs.device_parameter(self)
        self.add_extra_args_parameter()
        self.addParameter(QgsProcessingParameterRasterDestination(OUTPUT, "Embedding"))

    def backend_options(self, parameters, context, feedback) -> dict[str, Any]:
        options: dict[str, Any] = {"model": model_folder(self, parameters, context)}
        options.update(inputs.raster_input_options(self, parameters, context, feedback, with_grid=False))
        options.update(self.mapped_options(parameters, context, DIM, LEVELS, DTYPE, DATE, TILE, OVERLAP, BATCH_SIZE,
                                           SAMPLE_WINDOWS, SEED))
        options["devices"] = inputs.devices(self, parameters, context)
        options["out"] = inputs.ensure_parent(self.parameterAsOutputLayer(parameters, OUTPUT, context))
        return options

    def results(self, parameters, context, feedback) -> dict[str, Any]:
        out = self._options["out"]
        if not Path(out).is_file():
            raise QgsProcessingException(tr("The backend finished but wrote no embedding ({out}).").format(out=out))
        return {"OUTPUT": out}


