"""What Predict and Embed declare alike: the model package they read and the tiling of the inference."""

from __future__ import annotations

from pathlib import Path

from qgis.core import (
    QgsProcessingException,
)

from .. import backend_spec as spec
from ..i18n import tr
from .inputs import advanced, with_help
from .parameters import BATCH_SIZE, MODEL, OVERLAP, TILE


def model_folder(alg, parameters, context) -> str:
    model = alg.parameterAsFile(parameters, MODEL, context)
    pick = tr("Pick the folder a Fine-tune run wrote (it holds model.json and weights.safetensors; the dialog "
              "writes it as <output folder>/finetuned).")
    if not model:
        raise QgsProcessingException(tr("Choose the model package. {pick}").format(pick=pick))
    if not Path(model).exists():
        raise QgsProcessingException(tr("The model folder {model} does not exist. {pick}").format(
            model=repr(model), pick=pick))
    if not (Path(model) / "model.json").is_file():
        raise QgsProcessingException(tr("{model} is not an eo-ssl model package (no model.json in it). {pick}").format(
            model=repr(model), pick=pick))
    return model


def tiling_parameters(alg, tile_help: str) -> None:
    c = alg.COMMAND
    alg.addParameter(with_help(spec.number(TILE, "Tile size (pixels)", c, "--tile"), tile_help))
    alg.addParameter(spec.number(OVERLAP, "Tile overlap (fraction)", c, "--overlap"))
    alg.addParameter(advanced(spec.number(BATCH_SIZE, "Batch size (empty: {})".format(
        spec.device_defaults_text(c, "batch_size")), c, "--batch-size")))


