"""*Find similar* (``eo-ssl similar``): the cosine similarity of every pixel of a feature raster (an embedding:
AlphaEarth, TESSERA, eo-ssl's Embed) to the mean embedding of example polygons or points, one band per class; the
map tool (:mod:`qgis_plugin.similar_tool`) runs it on a clicked pixel or a drawn polygon."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qgis.core import (
    QgsMapLayerType,
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingLayerPostProcessorInterface,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterRasterDestination,
)

from ..i18n import tr
from ..names import QT_TRANSLATE_NOOP
from . import inputs
from .base import BackendAlgorithm
from .inputs import with_help
from .styling import OUTPUT_PROPERTY, attach

EXAMPLES = "EXAMPLES"
CLASS_FIELD = "CLASS_FIELD"
OUTPUT = "OUTPUT"


def style_similarity(layer) -> bool:
    """The pseudo-colour style of the ``.qml`` sidecar ``eo-ssl similar`` writes (2nd..98th percentile)."""
    if layer is None or layer.type() != QgsMapLayerType.RasterLayer:
        return False
    layer.setCustomProperty(OUTPUT_PROPERTY, "similarity")
    qml = Path(layer.source()).with_suffix(".qml")
    if not qml.is_file():
        return False
    _msg, ok = layer.loadNamedStyle(str(qml))
    layer.triggerRepaint()
    return bool(ok)


class SimilarityStyler(QgsProcessingLayerPostProcessorInterface):
    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 - QGIS API
        style_similarity(layer)


class SimilarAlgorithm(BackendAlgorithm):
    COMMAND = "similar"
    DISPLAY = QT_TRANSLATE_NOOP("@default", "5c Find similar (feature raster)")
    GROUP_ID = "mapping"
    HELP = QT_TRANSLATE_NOOP(
        "@default",
        "<p>Finds the pixels that look like a few examples in a <b>feature raster</b> (a per-pixel embedding: "
        "AlphaEarth Foundations' Satellite Embedding, TESSERA, eo-ssl's <i>Per-pixel embedding</i>, any multi-band "
        "raster): the cosine similarity (-1..1) of every pixel to the mean embedding of the example polygons or "
        "points, one band per class when a class field is given. Styled from 2nd to 98th percentile.</p>"
        "<p>The map tool <i>Find similar</i> (eo-ssl toolbar) runs it on a clicked pixel or a drawn polygon.</p>")

    OPTIONS = {**inputs.FEATURE_OPTIONS, inputs.AOI: ("--aoi", "--aoi-layer"), inputs.EXTENT: ("--bbox", "--bbox-crs"),
               EXAMPLES: ("--examples", "--examples-layer"), CLASS_FIELD: ("--class-field",), OUTPUT: ("--out",)}
    CLI_ONLY = {"--crs": "the similarity is computed on the feature raster's own grid (its CRS)",
                "--resolution": "the feature raster's own pixels"}

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API
        inputs.feature_input_parameters(self)
        features = self.parameterDefinition(inputs.FEATURES)
        features.setFlags(features.flags() & ~features.FlagOptional)
        self.addParameter(with_help(QgsProcessingParameterFeatureSource(
            EXAMPLES, "Examples (polygons or points)", [QgsProcessing.TypeVectorPoint,
                                                         QgsProcessing.TypeVectorPolygon]),
            "The pixels the polygons cover (a point: its pixel) give the mean embedding. 'Selected features only' "
            "uses the selection."))
        self.addParameter(with_help(QgsProcessingParameterField(
            CLASS_FIELD, "Class field (one band per class)", parentLayerParameterName=EXAMPLES, optional=True),
            "Empty: one band, the similarity to all the examples."))
        self.addParameter(with_help(QgsProcessingParameterFeatureSource(
            inputs.AOI, "Area (polygons; empty: the whole feature raster)", [QgsProcessing.TypeVectorPolygon],
            optional=True), "Limits the output to these polygons."))
        self.addParameter(QgsProcessingParameterExtent(inputs.EXTENT, "Area as an extent (instead of polygons)",
                                                       optional=True))
        self.add_extra_args_parameter()
        self.addParameter(QgsProcessingParameterRasterDestination(OUTPUT, "Similarity"))

    def backend_options(self, parameters, context, feedback) -> dict[str, Any]:
        options = inputs.feature_input_options(self, parameters, context)
        if not options:
            raise QgsProcessingException(tr("Give at least one feature raster layer."))
        examples = inputs.vector_file(self, parameters, EXAMPLES, context, feedback)
        if not examples:
            raise QgsProcessingException(tr("Give the example polygons or points."))
        options["examples"] = examples[0]
        if examples[1]:
            options["examples_layer"] = examples[1]
        options.update(self.mapped_options(parameters, context, CLASS_FIELD))
        aoi = inputs.vector_file(self, parameters, inputs.AOI, context, feedback)
        if aoi:
            options["aoi"] = aoi[0]
            if aoi[1]:
                options["aoi_layer"] = aoi[1]
        elif parameters.get(inputs.EXTENT) not in (None, ""):
            extent = self.parameterAsExtent(parameters, inputs.EXTENT, context)
            crs = self.parameterAsExtentCrs(parameters, inputs.EXTENT, context)
            options["bbox"] = ",".join(repr(v) for v in (extent.xMinimum(), extent.yMinimum(), extent.xMaximum(),
                                                         extent.yMaximum()))
            if crs.isValid():
                options["bbox_crs"] = inputs.crs_string(crs)
        options["out"] = inputs.ensure_parent(self.parameterAsOutputLayer(parameters, OUTPUT, context))
        return options

    def results(self, parameters, context, feedback) -> dict[str, Any]:
        out = self._options["out"]
        if not Path(out).is_file():
            raise QgsProcessingException(tr("The backend finished but wrote no similarity raster ({out}).").format(
                out=out))
        return {"OUTPUT": out}

    def postProcessAlgorithm(self, context, feedback):  # noqa: N802 - QGIS API (main thread)
        attach(context, self._options.get("out", ""), SimilarityStyler(), tr("Similarity"))
        return {}
