#!/usr/bin/env python3
"""Build the example graphical model shipped with the plugin, ``resources/models/predict_and_label.model3``, with
QgsProcessingModelAlgorithm (so the file is what the modeler itself writes). The plugin only loads it
(``qgis_plugin/shipped_models.py``).

Every parameter of a child algorithm has a value in the model (the inputs it is wired to, else the parameter's
default, as the Model Designer itself fills them when a child is added), so the model validates and opens with no
red child in the Model Designer. In the toolbox it is ``eo_ssl:predict_and_label`` (:class:`ShippedModel`: a stable
id without spaces); Raster > eo-ssl > Open the example model in the Model Designer opens an editable copy.

Regenerate ``resources/models/predict_and_label.model3`` after changing an algorithm's parameters::

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/build_example_model.py

(the plugin tests check that the shipped file equals a fresh build).
"""

from __future__ import annotations

import sys
from pathlib import Path

from qgis.core import (
    QgsApplication,
    QgsProcessing,
    QgsProcessingModelAlgorithm,
    QgsProcessingModelChildAlgorithm,
    QgsProcessingModelChildParameterSource,
    QgsProcessingModelOutput,
    QgsProcessingModelParameter,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFile,
    QgsProcessingParameterMultipleLayers,
)
from qgis.PyQt.QtCore import QPointF

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qgis_plugin.shipped_models import PREDICT_AND_LABEL  # noqa: E402 - after the checkout is on the path

MODEL_NAME = "Predict land cover and label parcels"
MODEL_GROUP = "5 Models"
MODEL_HELP = (
    "Predicts a land-cover map with a fine-tuned eo-ssl model package over the Sentinel scenes (and the AOI), then "
    "labels every parcel from that map and its confidence (majority class, share, confidence, status). The map comes "
    "back with its class style, the parcels with the class colours; review the 'uncertain' ones with the eo-ssl "
    "parcel labelling tool.")


def _input(model: QgsProcessingModelAlgorithm, param, x: float, y: float) -> None:
    component = QgsProcessingModelParameter(param.name())
    component.setPosition(QPointF(x, y))
    component.setDescription(param.description())
    model.addModelParameter(param, component)


def _output(child_id: str, name: str, child_output: str, x: float, y: float) -> QgsProcessingModelOutput:
    out = QgsProcessingModelOutput(name, name)
    out.setChildId(child_id)
    out.setChildOutputName(child_output)
    out.setPosition(QPointF(x, y))
    out.setMandatory(False)
    return out


def fill_defaults(child: QgsProcessingModelChildAlgorithm) -> None:
    """Give every parameter of ``child`` that has no source yet its default value (not the optional ones without a
    default, nor outputs): what the Model Designer does when a child is added, and what makes the child valid."""
    alg = QgsApplication.processingRegistry().algorithmById(child.algorithmId())
    if alg is None:
        raise RuntimeError(f"{child.algorithmId()} is not registered: register the eo-ssl provider first")
    sources = child.parameterSources()
    for param in alg.parameterDefinitions():
        if param.isDestination() or param.name() in sources:
            continue
        default = param.defaultValue()
        if default is None and param.flags() & param.FlagOptional:
            continue
        child.addParameterSources(param.name(), [QgsProcessingModelChildParameterSource.fromStaticValue(default)])


def build_predict_and_label() -> QgsProcessingModelAlgorithm:
    """Predict land cover -> Label parcels (the map and its confidence feed the labelling)."""
    model = QgsProcessingModelAlgorithm(MODEL_NAME, MODEL_GROUP)
    model.setHelpContent({"ALG_DESC": MODEL_HELP, "ALG_CREATOR": "eo-ssl", "ALG_VERSION": "1"})
    _input(model, QgsProcessingParameterFile("model_package", "Model package (from Fine-tune)",
                                             behavior=QgsProcessingParameterFile.Folder), 120, 60)
    _input(model, QgsProcessingParameterMultipleLayers("sentinel2", "Sentinel-2 scenes", QgsProcessing.TypeRaster),
           120, 120)
    _input(model, QgsProcessingParameterMultipleLayers("sentinel1", "Sentinel-1 scenes", QgsProcessing.TypeRaster,
                                                       optional=True), 120, 180)
    _input(model, QgsProcessingParameterFeatureSource("aoi", "Area of interest", [QgsProcessing.TypeVectorPolygon],
                                                      optional=True), 120, 240)
    _input(model, QgsProcessingParameterFeatureSource("parcels", "Parcels to label",
                                                      [QgsProcessing.TypeVectorPolygon]), 120, 320)

    predict = QgsProcessingModelChildAlgorithm("eo_ssl:predict")
    predict.setChildId("predict")
    predict.setDescription("Predict land cover")
    predict.setPosition(QPointF(420, 150))
    for param, source in (("MODEL", "model_package"), ("S2", "sentinel2"), ("S1", "sentinel1"), ("AOI", "aoi")):
        predict.addParameterSources(param, [QgsProcessingModelChildParameterSource.fromModelParameter(source)])
    fill_defaults(predict)
    predict.setModelOutputs({
        "Land-cover map": _output("predict", "Land-cover map", "OUTPUT", 640, 110),
        "Confidence": _output("predict", "Confidence", "CONFIDENCE", 640, 170),
    })
    model.addChildAlgorithm(predict)

    label = QgsProcessingModelChildAlgorithm("eo_ssl:label_parcels")
    label.setChildId("label_parcels")
    label.setDescription("Label parcels")
    label.setPosition(QPointF(420, 330))
    label.addParameterSources("MAP", [QgsProcessingModelChildParameterSource.fromChildOutput("predict", "OUTPUT")])
    label.addParameterSources("CONFIDENCE",
                              [QgsProcessingModelChildParameterSource.fromChildOutput("predict", "CONFIDENCE")])
    label.addParameterSources("PARCELS", [QgsProcessingModelChildParameterSource.fromModelParameter("parcels")])
    fill_defaults(label)
    label.setModelOutputs({"Labelled parcels": _output("label_parcels", "Labelled parcels", "OUTPUT", 640, 380)})
    model.addChildAlgorithm(label)
    return model


def write_predict_and_label(path: Path = PREDICT_AND_LABEL) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not build_predict_and_label().toFile(str(path)):
        raise OSError(f"could not write {path}")
    return path


def main() -> int:
    """Write the model (needs QGIS and the eo-ssl algorithms registered: a headless QGIS is started here)."""
    from qgis_plugin.provider import EoSslProvider

    app = QgsApplication([], False)
    app.initQgis()
    provider = EoSslProvider()
    QgsApplication.processingRegistry().addProvider(provider)
    print(write_predict_and_label())
    QgsApplication.processingRegistry().removeProvider(provider)
    app.exitQgis()
    return 0


if __name__ == "__main__":
    sys.exit(main())
