"""5 Predict land cover."""

from __future__ import annotations

import json
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
from .parameters import BATCH_SIZE, CONFIDENCE, DATE, MODEL, OUTPUT, OVERLAP, TILE, same_options
from .styling import ConfidenceStyler, PredictionStyler, attach


def _model_name(model_dir: str) -> str:
    """What the map layer is named after: ``segmentation resnet18``, ``pixel vote`` (a pixel classifier without an
    embedding has no encoder), ``pixel vote + resnet18``."""
    try:
        meta = json.loads((Path(model_dir) / "model.json").read_text(encoding="utf-8"))
        arch = meta.get("architecture") or {}
        encoder, decoder = arch.get("encoder"), arch.get("decoder")
        if arch.get("family") == "pixel" or (decoder and str(decoder).startswith("pixel")):
            return " + ".join(str(p) for p in (decoder or "pixel classifier", encoder) if p)
        return " ".join(str(p) for p in (meta.get("task") or "model", encoder) if p)
    except (OSError, ValueError, AttributeError):
        return Path(model_dir).name



class PredictAlgorithm(BackendAlgorithm):
    COMMAND = "predict"
    DISPLAY = QT_TRANSLATE_NOOP("@default", "5 Predict land cover")
    GROUP_ID = "mapping"
    HELP = QT_TRANSLATE_NOOP(
        "@default",
        "<p>Predicts a land-cover raster over the area of interest with a fine-tuned model package: tiled, "
        "overlapping windows blended without seams, written as a compressed GeoTIFF of class ids with a colour "
        "table and a <code>.qml</code> style (the class legend), plus an optional confidence raster (the highest "
        "class probability, 0..1).</p><p>The model's bands are matched to the inputs by name; a model whose bands "
        "are missing from the inputs is refused before any work. Loaded into the project with the class style "
        "and legend.</p>")

    OPTIONS = {MODEL: ("--model",), **inputs.INPUT_OPTIONS, **inputs.FEATURE_OPTIONS,
               **same_options(TILE, OVERLAP, DATE, BATCH_SIZE),
               inputs.DEVICES: ("--devices",), OUTPUT: ("--out",), CONFIDENCE: ("--confidence",)}
    CLI_ONLY = {**inputs.GRID_CLI_ONLY,
                "--scenes": "many scenes over several processes into one folder and mosaic: a job for the command "
                            "line (Processing's batch mode runs this algorithm once per scene)",
                "--out-dir": "with --scenes only", "--confidence-maps": "with --scenes only",
                "--num-nodes": "with --scenes only: machines started with torchrun"}

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API
        self.addParameter(with_help(QgsProcessingParameterFile(
            MODEL, "Model package (from Fine-tune)", behavior=QgsProcessingParameterFile.Folder),
            "A folder holding weights.safetensors and model.json."))
        inputs.raster_input_parameters(self, s2_optional=True, with_grid=False)
        inputs.feature_input_parameters(self)
        tiling_parameters(self, "Empty: {} for a segmentation model (a multiple of the model's stride); a "
                                 "classification model uses its chip size.".format(
                                     spec.input_default("tile_of_segmentation")))
        self.addParameter(advanced(QgsProcessingParameterString(
            DATE, "Sentinel-2 date to read (YYYY-MM-DD; empty: the clearest in the AOI)", optional=True)))
        inputs.device_parameter(self)
        self.add_extra_args_parameter()
        self.addParameter(QgsProcessingParameterRasterDestination(OUTPUT, "Land-cover map"))
        self.addParameter(QgsProcessingParameterRasterDestination(CONFIDENCE, "Confidence", optional=True,
                                                                  createByDefault=True))

    def backend_options(self, parameters, context, feedback) -> dict[str, Any]:
        model = model_folder(self, parameters, context)
        options: dict[str, Any] = {"model": model}
        options.update(inputs.raster_input_options(self, parameters, context, feedback, with_grid=False,
                                                   s2_required=not inputs.has_features(parameters)))
        options.update(inputs.feature_input_options(self, parameters, context))
        options.update(self.mapped_options(parameters, context, TILE, OVERLAP, DATE, BATCH_SIZE))
        options["devices"] = inputs.devices(self, parameters, context)
        out = self.parameterAsOutputLayer(parameters, OUTPUT, context)
        options["out"] = inputs.ensure_parent(out)
        conf = self.parameterAsOutputLayer(parameters, CONFIDENCE, context) if parameters.get(CONFIDENCE) else ""
        if conf:
            options["confidence"] = inputs.ensure_parent(conf)
        self._model_name = _model_name(model)
        return options

    def results(self, parameters, context, feedback) -> dict[str, Any]:
        out = self._options["out"]
        if not Path(out).is_file():
            raise QgsProcessingException(tr("The backend finished but wrote no map ({out}).").format(out=out))
        results = {"OUTPUT": out}
        conf = self._options.get("confidence")
        if conf:
            if not Path(conf).is_file():
                raise QgsProcessingException(tr("The backend finished but wrote no confidence raster ({conf}).").format(
                    conf=conf))
            results["CONFIDENCE"] = conf
        return results

    def postProcessAlgorithm(self, context, feedback):  # noqa: N802 - QGIS API (main thread)
        out = self._options.get("out", "")
        qml = str(Path(out).with_suffix(".qml")) if out else None
        name = getattr(self, "_model_name", "")
        attach(context, out, PredictionStyler(qml), f"Land cover ({name})" if name else "Land cover")
        conf = self._options.get("confidence")
        if conf:
            attach(context, conf, ConfidenceStyler(), "Confidence")
        return {}


