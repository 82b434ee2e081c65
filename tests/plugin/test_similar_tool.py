"""*Find similar* in a headless QGIS: the map tool's pieces (which layer, the example file, the parameters) and the
command line they give, then ``eo_ssl:similar`` run through Processing with the real backend on a small AlphaEarth-
format raster (64 int8 bands, nodata -128), its output loaded with its style."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine


@pytest.fixture()
def aef(tmp_path: Path) -> Path:
    """A 40 x 30 px AlphaEarth-format raster in EPSG:32633: two kinds of pixel (left and right half)."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=64), rng.normal(size=64)
    x = np.empty((64, 30, 40), np.float32)
    x[:, :, :20] = (a / np.linalg.norm(a))[:, None, None]
    x[:, :, 20:] = (b / np.linalg.norm(b))[:, None, None]
    from backend.data.feature_presets import alphaearth_encode

    q = alphaearth_encode(x)
    q[:, 0, 0] = -128
    path = tmp_path / "aef.tif"
    with rasterio.open(path, "w", driver="GTiff", width=40, height=30, count=64, dtype="int8", crs="EPSG:32633",
                       transform=Affine(10, 0, 335000, 0, -10, 5819840), nodata=-128) as dst:
        dst.write(q)
    return path


def test_tool_parameters_and_command_line(eo_provider, aef: Path, tmp_path: Path) -> None:
    from qgis.core import (
        QgsApplication,
        QgsCoordinateReferenceSystem,
        QgsPointXY,
        QgsProcessingContext,
        QgsProcessingFeedback,
        QgsProject,
        QgsRasterLayer,
    )

    from qgis_plugin.backend_runner import options_to_args
    from qgis_plugin.similar_tool import (
        example_geometry,
        feature_raster_layer,
        similar_parameters,
        write_example,
    )

    layer = QgsRasterLayer(str(aef), "aef")
    assert layer.isValid()
    QgsProject.instance().addMapLayer(layer)
    try:
        assert feature_raster_layer(None) is layer
        with pytest.raises(ValueError):
            example_geometry([QgsPointXY(0, 0), QgsPointXY(1, 1)])
        point = example_geometry([QgsPointXY(335055, 5819695)])
        example = write_example(point, QgsCoordinateReferenceSystem("EPSG:32633"), tmp_path / "ex.geojson")
        geo = json.loads(example.read_text())["features"][0]["geometry"]
        assert geo["type"] == "Point" and 12 < geo["coordinates"][0] < 13 and 52 < geo["coordinates"][1] < 53
        poly = example_geometry([QgsPointXY(335000, 5819840), QgsPointXY(335100, 5819840),
                                 QgsPointXY(335100, 5819700)])
        assert poly.type() == 2 and poly.area() > 0  # a polygon
        params = similar_parameters(layer, example, tmp_path / "sim.tif")
        alg = QgsApplication.processingRegistry().createAlgorithmById("eo_ssl:similar")
        ok, msg = alg.checkParameterValues(params, QgsProcessingContext())
        assert ok, msg
        context = QgsProcessingContext()
        context.setProject(QgsProject.instance())
        args = options_to_args(alg.backend_options(params, context, QgsProcessingFeedback()))
        assert args == ["--features", str(aef), "--examples", str(example), "--out", str(tmp_path / "sim.tif")]
    finally:
        QgsProject.instance().removeMapLayer(layer.id())


def test_similar_runs_through_processing_and_is_styled(eo_provider, aef: Path, tmp_path: Path) -> None:
    import processing
    from qgis.core import QgsCoordinateReferenceSystem, QgsPointXY, QgsProject, QgsRasterLayer

    from qgis_plugin.algorithms.similar import style_similarity
    from qgis_plugin.similar_tool import example_geometry, write_example

    example = write_example(example_geometry([QgsPointXY(335055, 5819695)]),
                            QgsCoordinateReferenceSystem("EPSG:32633"), tmp_path / "ex.geojson")
    out = tmp_path / "sim.tif"
    results = processing.run("eo_ssl:similar", {"FEATURES": [str(aef)], "EXAMPLES": str(example),
                                                "OUTPUT": str(out)})
    assert results["OUTPUT"] == str(out)
    with rasterio.open(out) as src:
        sim = src.read(1)
    assert sim[5, 5] == pytest.approx(1.0, abs=1e-4)  # the left half: the clicked pixel's kind
    assert np.all(sim[:, 25:] < 0.9) and np.isnan(sim[0, 0])
    layer = QgsRasterLayer(str(out), "sim")
    assert style_similarity(layer)
    assert layer.renderer().type() == "singlebandpseudocolor"
    QgsProject.instance().removeAllMapLayers()


def test_the_map_tool_runs_in_a_background_task_and_adds_the_styled_layer(eo_provider, aef: Path, qgis_iface) -> None:
    """As in QGIS: the tool's run starts ``eo_ssl:similar`` in a QgsProcessingAlgRunnerTask and returns; the context
    and feedback the task refers to outlive the call (collected while the task ran, they crashed a real QGIS in its
    worker thread), and the styled similarity layer is added when it ends."""
    import gc

    from qgis.core import QgsPointXY, QgsProject, QgsRasterLayer

    from qgis_plugin.similar_tool import SimilarMapTool, example_geometry
    from tests.plugin.conftest import wait_until

    project = QgsProject.instance()
    layer = QgsRasterLayer(str(aef), "aef")
    project.addMapLayer(layer)
    canvas = qgis_iface.mapCanvas()
    canvas.setDestinationCrs(layer.crs())
    canvas.setExtent(layer.extent())
    qgis_iface.setActiveLayer(layer)
    tool = SimilarMapTool(canvas, qgis_iface)
    try:
        assert tool.run(example_geometry([QgsPointXY(335055, 5819695)])) is not None
        gc.collect()  # the run's locals are gone; what the task refers to is kept with it
        assert len(tool.running) == 1

        def similarity():
            return next((lyr for lyr in project.mapLayers().values() if lyr.name() == "Similarity"), None)

        assert wait_until(lambda: similarity() is not None, 180)
        assert similarity().renderer().type() == "singlebandpseudocolor"
        value, ok = similarity().dataProvider().sample(QgsPointXY(335055, 5819695), 1)
        assert ok and value == pytest.approx(1.0, abs=1e-4)
        assert tool.running == []
    finally:
        project.removeAllMapLayers()
