"""The graphical models shipped in ``resources/models`` (the example ``predict_and_label.model3``): loaded into the
eo-ssl provider under ``eo_ssl:<file stem>`` (:class:`ShippedModel`: a stable id without spaces), and opened as an
editable copy in the Model Designer (Raster > eo-ssl > Open the example model in the Model Designer).

The example model is built by ``scripts/build_example_model.py`` (a development tool: it needs the provider
registered, which is why it is not part of the plugin)."""

from __future__ import annotations

from pathlib import Path

from qgis.core import QgsProcessingModelAlgorithm

from .paths import MODELS

PREDICT_AND_LABEL = MODELS / "predict_and_label.model3"


class ShippedModel(QgsProcessingModelAlgorithm):
    """A model file of resources/models under the id ``eo_ssl:<file stem>`` (a model's own name, shown in the
    toolbox, has spaces: ids with spaces are awkward in scripts, batch files and the history)."""

    def __init__(self, path: Path, name: str) -> None:
        super().__init__()
        self._path, self._name = Path(path), name
        self.loaded = self.fromFile(str(path))

    def name(self) -> str:
        return self._name

    def createInstance(self):  # noqa: N802 - QGIS API (every run and the history use a fresh instance)
        return ShippedModel(self._path, self._name)


def shipped_models() -> list[QgsProcessingModelAlgorithm]:
    """The .model3 files in resources/models, loaded (for the provider's 'Models' group)."""
    models = [ShippedModel(path, path.stem) for path in sorted(MODELS.glob("*.model3"))]
    return [m for m in models if m.loaded]


def editable_copy(path: Path = PREDICT_AND_LABEL) -> QgsProcessingModelAlgorithm:
    """The model as a plain model with no file behind it: the Model Designer's Save asks where to write it."""
    model = QgsProcessingModelAlgorithm()
    if not model.fromFile(str(path)):
        raise OSError(f"cannot read the model {path}")
    model.setSourceFilePath("")
    return model
