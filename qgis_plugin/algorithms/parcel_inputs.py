"""What Prepare and Export dataset declare alike: the labelled parcels and the train/validation/test split."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
)

from .. import backend_spec as spec
from ..i18n import tr
from . import inputs
from .inputs import advanced, with_help
from .parameters import BLOCK_SIZE, CLASS_FIELD, PARCELS, SEED, SPLIT, TEST_FRACTION, VAL_FRACTION, same_options

PARCEL_OPTIONS = {PARCELS: ("--parcels", "--parcels-layer"), CLASS_FIELD: ("--class-field",)}
#: the split parameters, named as their options
SPLIT_OPTIONS = same_options(SPLIT, BLOCK_SIZE, VAL_FRACTION, TEST_FRACTION, SEED)


def split_parameters(alg, advanced_split: bool) -> None:
    c = alg.COMMAND
    split = spec.enum(SPLIT, "Train/validation/test split", c, "--split")
    alg.addParameter(advanced(split) if advanced_split else split)
    alg.addParameter(advanced(spec.number(BLOCK_SIZE, "Block size (metres, split by block)", c, "--block-size")))
    alg.addParameter(advanced(spec.number(VAL_FRACTION, "Validation fraction", c, "--val-fraction")))
    alg.addParameter(advanced(spec.number(TEST_FRACTION, "Test fraction", c, "--test-fraction")))
    alg.addParameter(advanced(spec.number(SEED, "Random seed of the split", c, "--seed")))


def parcels_parameters(alg, optional: bool, field_help: str) -> None:
    alg.addParameter(with_help(QgsProcessingParameterFeatureSource(
        PARCELS, "Labelled parcels (polygons with a class attribute)", [QgsProcessing.TypeVectorPolygon],
        optional=optional), "Polygons with a class attribute, any CRS. 'Selected features only' uses the selection."))
    alg.addParameter(with_help(QgsProcessingParameterField(
        CLASS_FIELD, "Class field", parentLayerParameterName=PARCELS, optional=optional), field_help))


def parcels_options(alg, parameters, context, feedback) -> dict[str, Any]:
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


