"""The example graphical model shipped with the plugin, built with QgsProcessingModelAlgorithm (so the file is what
the modeler itself writes), and the loader that offers the shipped models in the eo-ssl provider.

Regenerate ``resources/models/predict_and_label.model3`` after changing an algorithm's parameters::

    QT_QPA_PLATFORM=offscreen .venv/bin/python -m qgis_plugin.models

(the plugin tests check that the shipped file equals a fresh build).
"""

from __future__ import annotations

from pathlib import Path

from qgis.core import (
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

from .paths import MODELS

PREDICT_AND_LABEL = MODELS / "predict_and_label.model3"

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
    label.setModelOutputs({"Labelled parcels": _output("label_parcels", "Labelled parcels", "OUTPUT", 640, 380)})
    model.addChildAlgorithm(label)
    return model


def write_predict_and_label(path: Path = PREDICT_AND_LABEL) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not build_predict_and_label().toFile(str(path)):
        raise OSError(f"could not write {path}")
    return path


def shipped_models() -> list[QgsProcessingModelAlgorithm]:
    """The .model3 files in resources/models, loaded (for the provider's 'Models' group)."""
    models = []
    for path in sorted(MODELS.glob("*.model3")):
        model = QgsProcessingModelAlgorithm()
        if model.fromFile(str(path)):
            models.append(model)
    return models


if __name__ == "__main__":  # regenerate the shipped model (needs QGIS and the eo-ssl algorithms registered)
    from qgis.core import QgsApplication

    from .provider import EoSslProvider

    app = QgsApplication([], False)
    app.initQgis()
    provider = EoSslProvider()
    QgsApplication.processingRegistry().addProvider(provider)
    print(write_predict_and_label())
    QgsApplication.processingRegistry().removeProvider(provider)
    app.exitQgis()
