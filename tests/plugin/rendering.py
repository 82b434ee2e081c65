"""Map rendering shared by the plugin tests and scripts/qgis_screenshots.py (which runs in QGIS's own Python: this
module imports nothing but qgis)."""

from __future__ import annotations


def true_colour(layer) -> None:
    from qgis.core import QgsContrastEnhancement, QgsMultiBandColorRenderer, QgsRasterBandStats

    renderer = QgsMultiBandColorRenderer(layer.dataProvider(), 3, 2, 1)  # B04, B03, B02
    for band, setter in ((3, renderer.setRedContrastEnhancement), (2, renderer.setGreenContrastEnhancement),
                         (1, renderer.setBlueContrastEnhancement)):
        stats = layer.dataProvider().bandStatistics(band, QgsRasterBandStats.All)
        ce = QgsContrastEnhancement(layer.dataProvider().dataType(band))
        ce.setContrastEnhancementAlgorithm(QgsContrastEnhancement.StretchToMinimumMaximum)
        ce.setMinimumValue(stats.minimumValue)
        ce.setMaximumValue(stats.mean + 2 * stats.stdDev)
        setter(ce)
    layer.setRenderer(renderer)

