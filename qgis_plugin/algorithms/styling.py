"""Styling of outputs when QGIS loads them: layer post-processors, called on the main thread by Processing
(``handleAlgorithmResults``) after the layer is added to the project; never from the worker thread that ran the
algorithm.
"""

from __future__ import annotations

from pathlib import Path

from qgis.core import (
    QgsColorRampShader,
    QgsMapLayerType,
    QgsProcessingLayerPostProcessorInterface,
    QgsRasterShader,
    QgsSingleBandPseudoColorRenderer,
    QgsStyle,
    QgsVectorLayer,
    QgsWkbTypes,
)
from qgis.PyQt.QtGui import QColor

from ..class_schemes import ClassDef, categorized_renderer, load_scheme
from ..i18n import tr

#: Processing keeps only a pointer to a post-processor: the Python objects are kept alive here (a few per run).
_KEEP: list[QgsProcessingLayerPostProcessorInterface] = []
_KEEP_MAX = 64


def _keep(pp: QgsProcessingLayerPostProcessorInterface) -> QgsProcessingLayerPostProcessorInterface:
    _KEEP.append(pp)
    del _KEEP[:-_KEEP_MAX]
    return pp


def attach(context, path: str, post_processor: QgsProcessingLayerPostProcessorInterface,
           name: str | None = None) -> bool:
    """Give the output at ``path`` a post-processor (and a layer name) if Processing will load it."""
    if not path or not context.willLoadLayerOnCompletion(path):
        return False
    details = context.layerToLoadOnCompletionDetails(path)
    if name:
        details.name = name
    details.setPostProcessor(_keep(post_processor))
    return True


#: Custom property marking the layers eo-ssl produced (the dialog does not offer them as Sentinel scenes).
OUTPUT_PROPERTY = "eo_ssl/output"


def style_prediction(layer, qml: Path | None = None) -> bool:
    """The class style and legend from the map's ``.qml`` sidecar (written by ``eo-ssl predict``)."""
    if layer is None or layer.type() != QgsMapLayerType.RasterLayer:
        return False
    layer.setCustomProperty(OUTPUT_PROPERTY, "landcover")
    qml = qml or Path(layer.source()).with_suffix(".qml")
    if not qml.is_file():
        return False
    _msg, ok = layer.loadNamedStyle(str(qml))
    layer.triggerRepaint()
    layer.emitStyleChanged()
    return bool(ok)


def style_confidence(layer) -> bool:
    """Confidence (max softmax, 0..1): the backend's ``.qml`` sidecar when there is one, else a Viridis ramp
    (dark = unsure)."""
    if layer is None or layer.type() != QgsMapLayerType.RasterLayer:
        return False
    layer.setCustomProperty(OUTPUT_PROPERTY, "confidence")
    sidecar = Path(layer.source()).with_suffix(".qml")
    if sidecar.is_file():
        _msg, ok = layer.loadNamedStyle(str(sidecar))
        if ok:
            layer.triggerRepaint()
            layer.emitStyleChanged()
            return True
    ramp = QgsStyle.defaultStyle().colorRamp("Viridis")
    shader_fn = QgsColorRampShader(0.0, 1.0)
    shader_fn.setColorRampType(QgsColorRampShader.Interpolated)
    if ramp is not None:
        shader_fn.setSourceColorRamp(ramp.clone())
        items = [QgsColorRampShader.ColorRampItem(v, ramp.color(v), f"{v:.2f}") for v in (0.0, 0.25, 0.5, 0.75, 1.0)]
    else:
        items = [QgsColorRampShader.ColorRampItem(0.0, QColor("#440154"), "0.00"),
                 QgsColorRampShader.ColorRampItem(1.0, QColor("#fde725"), "1.00")]
    shader_fn.setColorRampItemList(items)
    shader = QgsRasterShader()
    shader.setRasterShaderFunction(shader_fn)
    renderer = QgsSingleBandPseudoColorRenderer(layer.dataProvider(), 1, shader)
    renderer.setClassificationMin(0.0)
    renderer.setClassificationMax(1.0)
    layer.setRenderer(renderer)
    layer.triggerRepaint()
    layer.emitStyleChanged()
    return True


CLASS_FIELD_CANDIDATES = ("class_id", "class", "label", "class_name")
NAME_FIELD_CANDIDATES = ("class_name", "name", "label_name")


def parcel_class_field(layer: QgsVectorLayer) -> tuple[str | None, str]:
    """(field, 'id' | 'name') to categorise labelled parcels by."""
    names = [f.name() for f in layer.fields()]
    lower = {n.lower(): n for n in names}
    for cand in ("class_id", "class"):
        if cand in lower and layer.fields().field(lower[cand]).isNumeric():
            return lower[cand], "id"
    for cand in NAME_FIELD_CANDIDATES + ("class",):
        if cand in lower:
            return lower[cand], "name"
    return None, "id"


def style_parcels(layer, scheme: list[ClassDef] | None) -> bool:
    """Categorised by class with the class colours (labelled parcels, the map tool's layer)."""
    if layer is None or layer.type() != QgsMapLayerType.VectorLayer or not scheme:
        return False
    field, by = parcel_class_field(layer)
    if field is None:
        return False
    status = "status" if layer.fields().indexOf("status") >= 0 else None
    layer.setRenderer(categorized_renderer(field, scheme, QgsWkbTypes.geometryType(layer.wkbType()), by=by,
                                           status_field=status))
    layer.triggerRepaint()
    layer.emitStyleChanged()
    return True


class PredictionStyler(QgsProcessingLayerPostProcessorInterface):
    def __init__(self, qml: str | None = None) -> None:
        super().__init__()
        self.qml = Path(qml) if qml else None

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 - QGIS API
        if not style_prediction(layer, self.qml) and feedback is not None:
            feedback.pushWarning(tr("No class style found next to {path} (.qml).").format(
                path=layer.source() if layer else tr("the map")))


class ConfidenceStyler(QgsProcessingLayerPostProcessorInterface):
    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 - QGIS API
        style_confidence(layer)


class ParcelsStyler(QgsProcessingLayerPostProcessorInterface):
    """Labelled parcels: the class scheme of the map they were labelled from (its .qml sidecar)."""

    def __init__(self, scheme_source: str | None) -> None:
        super().__init__()
        self.scheme_source = scheme_source

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 - QGIS API
        try:
            scheme = load_scheme(self.scheme_source) if self.scheme_source else None
        except (OSError, ValueError) as exc:
            if feedback is not None:
                feedback.pushWarning(tr("Labelled parcels left unstyled: {error}").format(error=exc))
            return
        style_parcels(layer, scheme)
