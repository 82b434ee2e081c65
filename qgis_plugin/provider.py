"""The Processing provider "eo-ssl" (id ``eo_ssl``): the core of the QGIS side (docs/DESIGN.md)."""

from __future__ import annotations

import contextlib

from qgis.core import QgsApplication, QgsProcessingAlgorithm, QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .paths import ICON

PROVIDER_ID = "eo_ssl"


def algorithm_classes() -> list[type[QgsProcessingAlgorithm]]:
    """The algorithm classes, one per backend command, in the order of the workflow."""
    from .algorithms import ALGORITHMS

    return list(ALGORITHMS)


class EoSslProvider(QgsProcessingProvider):
    def __init__(self) -> None:
        super().__init__()
        # The shipped models need this provider's algorithms in the registry to resolve their children: they are
        # added by a second load once the registry has taken the provider.
        QgsApplication.processingRegistry().providerAdded.connect(self._on_provider_added)

    def _on_provider_added(self, provider_id: str) -> None:
        if provider_id == PROVIDER_ID and self.registered():
            self.refreshAlgorithms()

    def registered(self) -> bool:
        return QgsApplication.processingRegistry().providerById(PROVIDER_ID) is not None

    def unload(self) -> None:
        with contextlib.suppress(TypeError):  # already disconnected
            QgsApplication.processingRegistry().providerAdded.disconnect(self._on_provider_added)
        super().unload()

    def id(self) -> str:
        return PROVIDER_ID

    def name(self) -> str:
        return "eo-ssl"

    def longName(self) -> str:  # noqa: N802 - QGIS API
        return "eo-ssl: self-supervised learning on Sentinel-1/2"

    def icon(self) -> QIcon:
        return QIcon(str(ICON))

    def svgIconPath(self) -> str:  # noqa: N802 - QGIS API
        return str(ICON)

    def loadAlgorithms(self) -> None:  # noqa: N802 - QGIS API
        for cls in algorithm_classes():
            self.addAlgorithm(cls())
        # the example graphical models shipped in resources/models (Predict land cover -> Label parcels)
        if self.registered():
            from .shipped_models import shipped_models

            for model in shipped_models():
                self.addAlgorithm(model)
