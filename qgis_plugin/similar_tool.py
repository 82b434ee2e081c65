"""*Find similar*: a map tool on a feature raster (an embedding: AlphaEarth, TESSERA, eo-ssl's Per-pixel embedding).

Left-click adds a vertex (drawn as a rubber band); right-click runs: one vertex is a pixel, three or more a polygon
(Esc clears). The example is written to a temporary GeoJSON (in WGS 84, as RFC 7946 wants) and the Processing
algorithm ``eo_ssl:similar`` runs on the feature raster layer in a background task; its output is added to the project
styled from its ``.qml`` (2nd..98th percentile). The feature raster is the active layer when it is a multi-band file
raster, else the first such layer of the project.

The logic that needs no canvas (which layer, the example file, the algorithm's parameters) is in plain functions, so a
headless test checks the command line the tool runs.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from qgis.core import (
    QgsApplication,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsGeometry,
    QgsMapLayerType,
    QgsPointXY,
    QgsProcessingAlgRunnerTask,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProject,
    QgsRasterLayer,
    QgsWkbTypes,
)
from qgis.gui import QgsMapTool, QgsRubberBand
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QColor

from .i18n import tr

ALGORITHM = "eo_ssl:similar"


def is_feature_raster(layer) -> bool:
    """A multi-band raster file (GDAL provider) that eo-ssl did not write as a class map or confidence."""
    from .algorithms.styling import OUTPUT_PROPERTY

    return (layer is not None and layer.type() == QgsMapLayerType.RasterLayer and layer.providerType() == "gdal"
            and layer.bandCount() >= 2 and layer.customProperty(OUTPUT_PROPERTY) not in ("landcover", "confidence"))


def feature_raster_layer(active, project: QgsProject | None = None):
    """The active layer when it is a feature raster, else the project's first one (None: none)."""
    if is_feature_raster(active):
        return active
    project = project or QgsProject.instance()
    return next((lyr for lyr in project.mapLayers().values() if is_feature_raster(lyr)), None)


def example_geometry(points: list[QgsPointXY]) -> QgsGeometry:
    """One point (a pixel) or a polygon of three or more vertices."""
    if len(points) == 1:
        return QgsGeometry.fromPointXY(points[0])
    if len(points) < 3:
        raise ValueError(tr("Click once for a pixel, or three times or more for a polygon."))
    return QgsGeometry.fromPolygonXY([[*points, points[0]]])


def write_example(geometry: QgsGeometry, crs: QgsCoordinateReferenceSystem, path: str | Path) -> Path:
    """``geometry`` (in ``crs``) as a one-feature GeoJSON in WGS 84."""
    geom = QgsGeometry(geometry)
    wgs84 = QgsCoordinateReferenceSystem("EPSG:4326")
    if crs.isValid() and crs != wgs84:
        geom.transform(QgsCoordinateTransform(crs, wgs84, QgsProject.instance()))
    path = Path(path)
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": json.loads(geom.asJson(8))}]}))
    return path


def feature_files(layer) -> list[str]:
    from .algorithms.inputs import layer_file

    return [layer_file(layer)]


def similar_parameters(layer, example: str | Path, out: str | Path) -> dict[str, Any]:
    """The parameters of ``eo_ssl:similar`` for a feature raster layer and an example file."""
    return {"FEATURES": [layer], "EXAMPLES": str(example), "OUTPUT": str(out)}


def temp_paths(folder: str | Path | None = None) -> tuple[Path, Path]:
    """(example GeoJSON, similarity GeoTIFF) under a fresh temporary folder."""
    root = Path(tempfile.mkdtemp(prefix="eo_ssl_similar_", dir=folder))
    stamp = time.strftime("%H%M%S")
    return root / f"example_{stamp}.geojson", root / f"similarity_{stamp}.tif"


class SimilarMapTool(QgsMapTool):
    """Left-click: a vertex; right-click: run on the pixel (one vertex) or the polygon (three or more); Esc: clear."""

    def __init__(self, canvas, iface) -> None:
        super().__init__(canvas)
        self.iface = iface
        self.points: list[QgsPointXY] = []
        self.rubber = QgsRubberBand(canvas, QgsWkbTypes.PolygonGeometry)
        self.rubber.setColor(QColor(255, 0, 160, 160))
        self.rubber.setWidth(2)
        #: each running task with its context and feedback: the task holds a C++ reference to the context, so the
        #: Python objects must outlive it (a context collected while the task ran crashed QGIS in its worker thread)
        self.running: list[tuple[QgsProcessingAlgRunnerTask, QgsProcessingContext, QgsProcessingFeedback]] = []
        self.setCursor(Qt.CrossCursor)

    def activate(self) -> None:
        super().activate()
        self.iface.messageBar().pushInfo("eo-ssl", tr(
            "Find similar: click a pixel, or click the vertices of a polygon, then right-click to run (Esc clears)."))

    def deactivate(self) -> None:
        self.clear()
        super().deactivate()

    def clear(self) -> None:
        self.points = []
        self.rubber.reset(QgsWkbTypes.PolygonGeometry)

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt API
        if event.key() == Qt.Key_Escape:
            self.clear()

    def canvasReleaseEvent(self, event) -> None:  # noqa: N802 - Qt API
        if event.button() == Qt.LeftButton:
            point = self.toMapCoordinates(event.pos())
            self.points.append(point)
            self.rubber.addPoint(point, True)
        elif event.button() == Qt.RightButton and self.points:
            try:
                self.run(example_geometry(self.points))
            except ValueError as exc:
                self.iface.messageBar().pushWarning("eo-ssl", str(exc))
            self.clear()

    def run(self, geometry: QgsGeometry) -> QgsProcessingAlgRunnerTask | None:
        layer = feature_raster_layer(self.iface.activeLayer())
        if layer is None:
            self.iface.messageBar().pushWarning("eo-ssl", tr(
                "Find similar needs a feature raster layer (an embedding: AlphaEarth, TESSERA, eo-ssl's Per-pixel "
                "embedding): add one to the project and select it."))
            return None
        example, out = temp_paths()
        write_example(geometry, self.canvas().mapSettings().destinationCrs(), example)
        alg = QgsApplication.processingRegistry().createAlgorithmById(ALGORITHM)
        context, feedback = QgsProcessingContext(), QgsProcessingFeedback()
        context.setProject(QgsProject.instance())
        task = QgsProcessingAlgRunnerTask(alg, similar_parameters(layer, example, out), context, feedback)
        task.executed.connect(lambda ok, _results, o=out, t=task: self._done(ok, o, t, feedback))
        self.running.append((task, context, feedback))
        QgsApplication.taskManager().addTask(task)
        self.iface.messageBar().pushInfo("eo-ssl", tr("Find similar: running on {layer}…").format(layer=layer.name()))
        return task

    def _done(self, ok: bool, out: Path, task, feedback) -> None:
        from .algorithms.similar import style_similarity

        self.running = [run for run in self.running if run[0] is not task]
        if not ok or not Path(out).is_file():
            self.iface.messageBar().pushWarning("eo-ssl", tr("Find similar failed: {log}").format(
                log=(feedback.textLog().strip().splitlines() or [""])[-1]))
            return
        layer = QgsRasterLayer(str(out), tr("Similarity"))
        style_similarity(layer)
        QgsProject.instance().addMapLayer(layer)
