"""The parcel labelling map tool (clicks, keys 1..9, undo, next uncertain parcel), class schemes, and the styled
outputs of Label parcels and of a background run, in the headless QGIS."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.plugin.conftest import require_command, wait_until

pytestmark = pytest.mark.qgis

PALETTE = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"]


@pytest.fixture()
def crop_scheme(flanders, tmp_path: Path) -> Path:
    """A JSON class list from the parcels' own crop codes and names (WorldCereal legend)."""
    import sqlite3

    with sqlite3.connect(flanders["parcels"]) as con:
        table = con.execute("SELECT table_name FROM gpkg_contents WHERE data_type='features'").fetchone()[0]
        rows = con.execute(f'SELECT DISTINCT ct_code, ct_name FROM "{table}" ORDER BY ct_code').fetchall()
    classes = [{"id": int(code), "name": name, "colour": PALETTE[i % len(PALETTE)]}
               for i, (code, name) in enumerate(rows)]
    path = tmp_path / "crop classes.json"
    path.write_text(json.dumps(classes))
    return path


@pytest.fixture()
def labelled_layer(eo_provider, flanders, crop_scheme, tmp_path: Path):
    """label-parcels on a 20 m version of the patch's class raster (mixed pixels along parcel edges), with a strict
    majority threshold so that several parcels come out 'uncertain'."""
    require_command("label-parcels")
    import processing
    from osgeo import gdal
    from qgis.core import QgsVectorLayer

    coarse = tmp_path / "crop map 20 m.tif"
    gdal.Translate(str(coarse), str(flanders["labels"]), xRes=20, yRes=20, resampleAlg="nearest", bandList=[1])
    out = tmp_path / "labelled parcels.gpkg"
    processing.run("eo_ssl:label_parcels", {"MAP": str(coarse), "PARCELS": str(flanders["parcels"]),
                                            "CLASSES": str(crop_scheme), "MIN_FRACTION": 0.97,
                                            "OUTPUT": str(out)})
    layer = QgsVectorLayer(str(out), "labelled parcels", "ogr")
    assert layer.isValid()
    yield layer  # the test adds it to the project, which owns (and deletes) it


def test_parcel_labelling_tool(eo_provider, labelled_layer, crop_scheme, project_layers, qgis_iface,
                               tmp_path_factory) -> None:
    """Clicks through the map tool assign the current class via the edit buffer (undo works); keys 1..9 pick the
    class; 'next uncertain' visits the uncertain parcels least confident first; the layer shows class colours."""
    from qgis.core import QgsCategorizedSymbolRenderer, QgsPointXY, QgsProject
    from qgis.gui import QgsMapCanvas, QgsMapMouseEvent
    from qgis.PyQt.QtCore import QEvent, QPoint, Qt
    from qgis.PyQt.QtGui import QKeyEvent
    from qgis.PyQt.QtWidgets import QHBoxLayout, QWidget

    from qgis_plugin.class_schemes import load_scheme
    from qgis_plugin.parcel_labelling import ParcelLabelPanel

    layer = labelled_layer
    QgsProject.instance().addMapLayer(layer)
    scheme = load_scheme(crop_scheme)
    # a window with a map canvas and the labelling panel, as in QGIS
    window = QWidget()
    canvas = QgsMapCanvas(window)
    canvas.setDestinationCrs(layer.crs())
    canvas.setLayers([layer, project_layers["s2"][0]])
    hl = QHBoxLayout(window)
    hl.addWidget(canvas, 3)
    iface = type("Iface", (), {"mapCanvas": lambda self: canvas, "mainWindow": lambda self: window})()
    panel = ParcelLabelPanel(iface, window)
    hl.addWidget(panel, 2)
    window.resize(1180, 580)
    window.show()
    canvas.setExtent(layer.extent())
    try:
        panel.layer_combo.setLayer(layer)
        panel.set_scheme(scheme, crop_scheme.name)
        labeller = panel.labeller
        assert labeller is not None and isinstance(layer.renderer(), QgsCategorizedSymbolRenderer)
        assert {c.value() for c in layer.renderer().categories()} >= {c.id for c in scheme}
        uncertain = labeller.uncertain_ids()
        assert uncertain, "strict thresholds should leave some parcels uncertain"
        confidences = [layer.getFeature(fid)["class_frac"] for fid in uncertain]
        assert confidences == sorted(confidences)

        # the class list shows the classes without scrolling (up to 10 rows), not ~4
        rows = min(len(scheme), panel.VISIBLE_CLASSES)
        assert panel.class_list.minimumHeight() >= rows * panel.class_list.sizeHintForRow(0)

        # next uncertain parcel: zooms to it and outlines it (no selection: its yellow would hide the class colour)
        fid = panel.next_uncertain()
        assert fid == uncertain[0] and layer.selectedFeatureIds() == []
        assert panel.current_fid == fid and panel.highlight.numberOfVertices() >= 4
        assert canvas.extent().contains(layer.getFeature(fid).geometry().boundingBox())

        # the tool on: the canvas takes the keyboard, so 1..9 work without a first click (which would label a parcel)
        window.activateWindow()
        panel.activate_button.setChecked(True)
        tool = panel.tool
        assert canvas.mapTool() is tool
        assert wait_until(canvas.hasFocus, 5), "the map canvas should have the keyboard focus"
        # key 3 picks the third class (the status line follows at once), a click inside the parcel labels it
        tool.keyPressEvent(QKeyEvent(QEvent.KeyPress, Qt.Key_3, Qt.NoModifier))
        assert labeller.current == 2 and panel.class_list.currentRow() == 2
        assert f"Current class: <b>{scheme[2].name}</b>" in panel.status_label.text()
        # the keys also work while the panel has the focus, and give the focus back to the map
        panel.class_list.setFocus()
        panel.keyPressEvent(QKeyEvent(QEvent.KeyPress, Qt.Key_2, Qt.NoModifier))
        assert labeller.current == 1 and f"<b>{scheme[1].name}</b>" in panel.status_label.text()
        assert wait_until(canvas.hasFocus, 5)
        tool.keyPressEvent(QKeyEvent(QEvent.KeyPress, Qt.Key_3, Qt.NoModifier))
        inside = layer.getFeature(fid).geometry().pointOnSurface().asPoint()
        pixel = canvas.getCoordinateTransform().transform(QgsPointXY(inside))
        click = QgsMapMouseEvent(canvas, QEvent.MouseButtonRelease, QPoint(int(pixel.x()), int(pixel.y())),
                                 Qt.LeftButton, Qt.LeftButton, Qt.NoModifier)
        tool.canvasReleaseEvent(click)
        feature = layer.getFeature(fid)
        assert (feature["class_id"], feature["class_name"]) == (scheme[2].id, scheme[2].name)
        assert (feature["status"], feature["label_src"]) == ("labelled", "manual")
        assert layer.isEditable() and layer.undoStack().count() >= 1
        assert fid not in layer.selectedFeatureIds() and panel.current_fid is None  # its new colour shows
        assert fid not in labeller.uncertain_ids()
        left = f"{len(uncertain) - 1} uncertain parcel(s) left"
        assert left in panel.status_label.text()

        # undo puts the old values back, and the count follows: the panel's Undo, Ctrl+Z on the map, a redo
        before_undo = layer.undoStack().index()
        panel.undo()
        feature = layer.getFeature(fid)
        assert feature["status"] == "uncertain" and layer.undoStack().index() == before_undo - 1
        assert f"{len(uncertain)} uncertain parcel(s) left" in panel.status_label.text()
        layer.undoStack().redo()
        assert layer.getFeature(fid)["class_name"] == scheme[2].name and left in panel.status_label.text()
        tool.keyPressEvent(QKeyEvent(QEvent.KeyPress, Qt.Key_Z, Qt.ControlModifier))
        assert f"{len(uncertain)} uncertain parcel(s) left" in panel.status_label.text(), panel.status_label.text()
        layer.undoStack().redo()
        assert left in panel.status_label.text()

        # label the next uncertain one with class 1 and save: the GeoPackage holds the edits
        fid2 = panel.next_uncertain()
        if fid2 is not None:
            tool.keyPressEvent(QKeyEvent(QEvent.KeyPress, Qt.Key_1, Qt.NoModifier))
            assert labeller.assign(fid2)
        layer.removeSelection()
        canvas.setExtent(layer.extent())
        rendered: list[bool] = []
        canvas.mapCanvasRefreshed.connect(lambda: rendered.append(True))
        canvas.refreshAllLayers()
        assert wait_until(lambda: bool(rendered) and not canvas.isDrawing(), 30)
        wait_until(lambda: False, 2.0)  # let the red flash of 'next uncertain parcel' (3 x 0.5 s) end
        assert window.grab().save(str(tmp_path_factory.mktemp("shots") / "labelling.png"))
        assert panel.save()
        saved = panel.status_label.text()  # Save edits says what it wrote
        assert "Saved: " in saved and Path(layer.source().split("|")[0]).name in saved, saved
        assert not panel.save() and "Nothing to save" in panel.status_label.text()
        from qgis.core import QgsVectorLayer

        reread = QgsVectorLayer(layer.source(), "reread", "ogr")
        assert reread.getFeature(fid)["class_name"] == scheme[2].name
        del reread
    finally:
        panel.cleanup()
        window.close()
        QgsProject.instance().removeMapLayer(layer.id())
        window.deleteLater()


def test_class_schemes(tmp_path: Path, flanders) -> None:
    from qgis_plugin.class_schemes import load_scheme, parse_classes

    model = tmp_path / "model"
    model.mkdir()
    (model / "model.json").write_text(json.dumps({"format": "eo-ssl-model", "classes": [
        {"id": 0, "name": "forest", "colour": "#1b7837"}, {"id": 3, "name": "water", "colour": "#2166ac"}]}))
    assert [(c.id, c.name, c.colour) for c in load_scheme(model)] == [(0, "forest", "#1b7837"),
                                                                       (3, "water", "#2166ac")]
    names = parse_classes(["a", "b", "c"])
    assert [c.id for c in names] == [0, 1, 2] and len({c.colour for c in names}) == 3
    with pytest.raises(ValueError):
        parse_classes([{"id": 1, "name": "x"}, {"id": 1, "name": "y"}])
    qml = tmp_path / "map.qml"
    qml.write_text('<qgis><pipe><rasterrenderer type="paletted"><colorPalette>'
                   '<paletteEntry value="1" color="#ff0000" label="crop" alpha="255"/>'
                   '<paletteEntry value="2" color="#00ff00" label="grass" alpha="255"/>'
                   '</colorPalette></rasterrenderer></pipe></qgis>')
    shutil.copy(flanders["labels"], tmp_path / "map.tif")
    assert [(c.id, c.name) for c in load_scheme(tmp_path / "map.tif")] == [(1, "crop"), (2, "grass")]


def test_labelled_parcels_are_loaded_with_the_class_colours(eo_provider, flanders, crop_scheme, tmp_path: Path,
                                                            qgis_new_project) -> None:
    """runAndLoadResults (what the toolbox does): the layer post-processor names the layer and gives it a categorised
    renderer with the scheme's colours, on the main thread."""
    require_command("label-parcels")
    import processing
    from qgis.core import QgsCategorizedSymbolRenderer, QgsProject

    from qgis_plugin.class_schemes import load_scheme

    processing.runAndLoadResults("eo_ssl:label_parcels", {
        "MAP": str(flanders["labels"]), "PARCELS": str(flanders["parcels"]), "CLASSES": str(crop_scheme),
        "OUTPUT": str(tmp_path / "labelled.gpkg")})
    (layer,) = QgsProject.instance().mapLayersByName("Labelled parcels (labelled)")  # named after its file
    renderer = layer.renderer()
    assert isinstance(renderer, QgsCategorizedSymbolRenderer) and renderer.classAttribute() == "class_id"
    colours = {c.value(): c.symbol().color().name() for c in renderer.categories()}
    for cls in load_scheme(crop_scheme):
        assert colours[cls.id] == cls.colour
    QgsProject.instance().removeAllMapLayers()


def test_a_background_run_loads_and_styles_its_outputs(eo_provider, flanders, crop_scheme, tmp_path: Path,
                                                       qgis_new_project) -> None:
    """As the toolbox and the dialog run algorithms: a QgsProcessingAlgRunnerTask (worker thread, its own context),
    then Processing's result handling on the main thread loads the output and runs its post-processor."""
    require_command("label-parcels")
    from qgis.core import QgsCategorizedSymbolRenderer, QgsProcessingOutputLayerDefinition, QgsProject

    from qgis_plugin.jobs import JobRunner, Step

    project = QgsProject.instance()
    out = tmp_path / "background.gpkg"
    job = JobRunner([Step("eo_ssl:label_parcels", {
        "MAP": str(flanders["labels"]), "PARCELS": str(flanders["parcels"]), "CLASSES": str(crop_scheme),
        "OUTPUT": QgsProcessingOutputLayerDefinition(str(out), project)}, "Label parcels")], project)
    finished: list[tuple[bool, str]] = []
    job.finished.connect(lambda ok, msg: finished.append((ok, msg)))
    job.start()
    assert wait_until(lambda: bool(finished), 120)
    assert finished[0][0], finished
    (layer,) = [lyr for lyr in project.mapLayers().values() if lyr.name().startswith("Labelled parcels")]
    assert layer.source().startswith(str(out))
    assert isinstance(layer.renderer(), QgsCategorizedSymbolRenderer)
    assert job.loaded_layers == [layer.id()]
    project.removeAllMapLayers()
