"""The Processing provider "eo-ssl" (id ``eo_ssl``): the core of the QGIS side (docs/DESIGN.md)."""

from __future__ import annotations

from qgis.core import QgsProcessingAlgorithm, QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .paths import ICON

PROVIDER_ID = "eo_ssl"


def algorithm_classes() -> list[type[QgsProcessingAlgorithm]]:
    """The algorithm classes, one per backend command, in the order of the workflow."""
    from .algorithms import ALGORITHMS

    return list(ALGORITHMS)


class EoSslProvider(QgsProcessingProvider):
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
