"""The README's pictures, taken in a real QGIS (3.22) window: a startup script for ``qgis --code`` (run it with
``bash scripts/screenshots.sh``, which installs the plugin zip into a clean profile under Xvfb first).

It walks the way a new user walks and checks each stage as it goes (the checks land in EO_SSL_WALK, a JSON file):

1. the first-run panel opens by itself (no backend anywhere), with the commands it would run -> first_run.png;
   "Use an existing Python" then makes the given interpreter the backend;
2. Settings > Options… > eo-ssl -> settings.png; Raster > eo-ssl > Backend diagnostics -> diagnostics.png;
3. the dialog on the Flanders sample (2 Sentinel-2 dates, 1 Sentinel-1 date, 19 LPIS parcels): its Data, Training and
   Output tabs once the parcels are chosen (the few-label map is the default) -> dialog_{data,training,output}.png;
   that run without the compare report (tens of minutes on 2 CPU cores): prepare, the quick pixel classifier,
   prediction, parcel labelling -> dialog.png;
4. the example model opened in the Model Designer -> model_designer.png;
5. the parcel labelling tool on the labelled parcels: next uncertain parcel, key 2, a click -> parcel_labelling.png;
6. *Find similar* on a feature raster (EO_SSL_SAMPLE/embedding.tif, ``eo-ssl embed`` of the sample's Sentinel-2 dates;
   screenshots.sh writes it): the map tool clicks a parcel's pixel and runs; a styled similarity layer appears, 1.0
   at the clicked pixel -> EO_SSL_SIMILAR_SHOTS/find_similar.png.

EO_SSL_STAGES=find_similar walks stage 6 alone (the backend Python is then set in the profile, not in the panel).

Environment: EO_SSL_SHOTS (output folder), EO_SSL_WALK (the checks), EO_SSL_SAMPLE (worldcereal_flanders_2018
folder), EO_SSL_WORK (a scratch folder), EO_SSL_BACKEND (the backend Python to choose in the panel), EO_SSL_REPO
(the repository).
"""

import json
import os
import sys
import time
import traceback
from pathlib import Path

import qgis.utils
from qgis.core import (
    QgsFillSymbol,
    QgsProject,
    QgsRasterLayer,
    QgsSingleSymbolRenderer,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QPoint, Qt, QTimer
from qgis.PyQt.QtGui import QKeyEvent
from qgis.PyQt.QtTest import QTest
from qgis.PyQt.QtWidgets import QApplication, QWidget

SHOTS = Path(os.environ["EO_SSL_SHOTS"])
SAMPLE = Path(os.environ["EO_SSL_SAMPLE"])
WORK = Path(os.environ["EO_SSL_WORK"])
BACKEND = os.environ["EO_SSL_BACKEND"]
WALK = Path(os.environ["EO_SSL_WALK"])
REPO = Path(os.environ["EO_SSL_REPO"])
SIMILAR_SHOTS = Path(os.environ.get("EO_SSL_SIMILAR_SHOTS") or SHOTS)
STAGES = os.environ.get("EO_SSL_STAGES") or "all"
walk: dict = {}

sys.path.insert(0, str(REPO))  # the tests' rendering helpers (they import nothing but qgis)
from tests.plugin.rendering import true_colour  # noqa: E402


def wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():
        QApplication.processEvents()
        time.sleep(0.05)
    return bool(predicate())


def reached(stage: str) -> None:
    """The walk so far, written at once: a crash of QGIS leaves what it had seen (and where it was)."""
    walk["reached"] = stage
    WALK.write_text(json.dumps(walk, indent=1, default=str))


def settle(seconds: float = 0.5) -> None:
    wait(lambda: False, seconds)


def save(widget, name: str, folder: Path = SHOTS) -> None:
    settle()
    assert widget.grab().save(str(folder / name)), name
    walk.setdefault("shots", []).append(str(folder / name))


def first_run(plugin) -> None:
    walk["panel_opened"] = wait(lambda: plugin.setup_dialog is not None and plugin.setup_dialog.isVisible(), 30)
    scratch = os.environ.get("EO_SSL_SCRATCH")
    if scratch:  # the whole screen: is the panel in front of QGIS's window?
        settle(2.0)
        QApplication.primaryScreen().grabWindow(0).save(str(Path(scratch) / "screen_first_run.png"))
    panel = plugin.setup_dialog
    walk["plan"] = wait(lambda: panel.plan is not None, 60)
    panel.resize(900, 640)
    save(panel, "first_run.png")
    panel.tabs.setCurrentIndex(1)
    panel.python_widget.setFilePath(BACKEND)
    panel.use_button.click()
    walk["backend_ready"] = wait(lambda: panel.last_report is not None, 180) and panel.last_report.ok
    panel.close()


def settings_page(plugin) -> None:
    def grab_modal() -> None:
        dialog = QApplication.activeModalWidget()
        walk["options_dialog"] = dialog is not None
        if dialog is None:
            return
        dialog.resize(1000, 640)
        pages = [w for w in dialog.findChildren(QWidget) if w.objectName() == "EoSslOptionsPage"]
        walk["options_page"] = bool(pages) and pages[0].isVisible()
        if pages:
            pages[0].check()
            walk["options_check"] = wait(lambda: pages[0].check_task is None, 120) and "Ready" in \
                pages[0].status.text()
        settle(1.0)
        save(dialog, "settings.png")
        dialog.reject()

    QTimer.singleShot(2500, grab_modal)
    plugin.show_options()


def diagnostics(plugin) -> None:
    plugin.show_diagnostics()
    dlg = plugin.diagnostics_dialog
    walk["diagnostics"] = wait(lambda: dlg.report is not None, 120) and dlg.report.ok
    dlg.resize(820, 520)
    save(dlg, "diagnostics.png")
    dlg.close()


def load_sample() -> dict:
    project = QgsProject.instance()
    s2 = [QgsRasterLayer(str(SAMPLE / "s2" / n), Path(n).stem) for n in ("S2_20170824.tif", "S2_20170827.tif")]
    s1 = [QgsRasterLayer(str(SAMPLE / "s1" / "S1_20170807.tif"), "S1_20170807")]
    parcels = QgsVectorLayer(str(SAMPLE / "parcels.gpkg"), "LPIS parcels", "ogr")
    parcels.setRenderer(QgsSingleSymbolRenderer(QgsFillSymbol.createSimple(
        {"color": "0,0,0,0", "outline_color": "255,255,255,255", "outline_width": "0.4"})))
    for layer in s2:
        true_colour(layer)
    project.addMapLayers([*s1, *s2[::-1], parcels])
    qgis.utils.iface.mapCanvas().setExtent(s2[0].extent())
    return {"s2": s2, "s1": s1, "parcels": parcels}


def run_dialog(plugin, layers: dict) -> None:
    """The dialog as a new user meets it: the parcels chosen, the few-label map is the default (class field,
    steps); its three tabs at the default size, then that run (+ labelling the parcels) with its log at the end."""
    plugin.show_dialog()
    dlg = plugin.dialog
    dlg.resize(1100, 720)
    dlg.parcels_layer.setLayer(layers["parcels"])
    walk["class_field"] = dlg.class_field.currentField()
    walk["default_steps"] = {n: getattr(dlg, f"step_{n}").isChecked()
                             for n in ("pretrain", "finetune", "evaluate", "predict", "label")}
    dlg.poi_check.setChecked(True)
    dlg.poi_start.setDate(dlg.poi_start.date().fromString("2017-08-01", "yyyy-MM-dd"))
    dlg.poi_end.setDate(dlg.poi_end.date().fromString("2017-12-31", "yyyy-MM-dd"))
    dlg.step_label.setChecked(True)  # the labelling tool below works on the labelled parcels
    dlg.device.setCurrentIndex(dlg.device.findData("cpu"))
    dlg.output_dir.setFilePath(str(WORK / "dialog run"))
    for index, name in enumerate(("dialog_data.png", "dialog_training.png", "dialog_output.png")):
        dlg.tabs.setCurrentIndex(index)
        save(dlg, name)
    walk["s1_list"] = [dlg.s1_list.item(i).text() for i in range(dlg.s1_list.count())]
    # the compare report (it trains a U-Net from random init too) takes tens of minutes on 2 busy CPU cores: the
    # picture's run is the map part of the default, the report is left out of it
    dlg.step_evaluate.setChecked(False)
    finished: list = []
    dlg.jobFinished.connect(lambda ok, msg: finished.append((ok, msg)))
    t0 = time.monotonic()
    first_map: list = []
    walk["job_started"] = dlg.start_job()
    walk["steps"] = [s.title for s in dlg.job.steps] if dlg.job else []

    def done() -> bool:  # when the map is in the project, and when the job ends
        if not first_map and any(lyr.name().startswith("Land cover")
                                 for lyr in QgsProject.instance().mapLayers().values()):
            first_map.append(round(time.monotonic() - t0, 1))
        return bool(finished)

    walk["job_finished"] = wait(done, 3000)
    walk["first_map_s"] = first_map[0] if first_map else None
    walk["job_s"] = round(time.monotonic() - t0, 1)
    walk["job"] = finished[0] if finished else None
    walk["layer_names"] = sorted(lyr.name() for lyr in QgsProject.instance().mapLayers().values())
    dlg.tabs.setCurrentIndex(0)
    save(dlg, "dialog.png")
    bar = dlg.log_view.verticalScrollBar()
    walk["log_at_end"] = bar.value() >= bar.maximum() - 1
    walk["dialog_log"] = dlg.log_view.toPlainText().splitlines()[-40:]
    dlg.close()


def model_designer(plugin) -> None:
    modeler = plugin.open_example_model()
    modeler.resize(1280, 760)
    settle(1.5)
    model = modeler.model()
    walk["model_valid"] = [model.validateChildAlgorithm(c)[0] for c in sorted(model.childAlgorithms())]
    save(modeler, "model_designer.png")
    modeler.setDirty(False)
    modeler.close()


def labelling(plugin) -> None:
    iface = qgis.utils.iface
    project = QgsProject.instance()
    found = [lyr for lyr in project.mapLayers().values() if lyr.name().startswith("Labelled parcels")]
    walk["labelled_layer"] = bool(found)
    if not found:
        return
    layer = found[0]
    for other in project.mapLayers().values():  # the parcels over the clearer Sentinel-2 date in true colour
        if other.name().startswith(("Land cover", "Confidence", "S1_", "S2_20170824")):
            project.layerTreeRoot().findLayer(other.id()).setItemVisibilityChecked(False)
    iface.setActiveLayer(layer)
    plugin.show_label_panel()
    panel = plugin.label_panel
    walk["classes"] = panel.class_list.count()
    panel.activate_button.setChecked(True)
    canvas = iface.mapCanvas()
    # the keyboard goes to the map (under Xvfb no window manager activates the window: its focus widget says it)
    walk["canvas_focus_on_activation"] = wait(lambda: canvas.hasFocus() or iface.mainWindow().focusWidget() is canvas,
                                              5)
    fid = panel.next_uncertain()
    walk["next_uncertain"] = fid
    if fid is None:  # nothing uncertain: label the first parcel
        fid = next(iter(layer.allFeatureIds()))
    QApplication.sendEvent(canvas, QKeyEvent(QKeyEvent.KeyPress, Qt.Key_2, Qt.NoModifier))
    walk["class_after_key_2"] = panel.labeller.current
    walk["status_after_key_2"] = panel.status_label.text()
    settle(1.0)
    point = layer.getFeature(fid).geometry().pointOnSurface().asPoint()
    point = canvas.mapSettings().layerToMapCoordinates(layer, point)
    pixel = canvas.getCoordinateTransform().transform(point)
    QTest.mouseClick(canvas.viewport(), Qt.LeftButton, Qt.NoModifier, QPoint(int(pixel.x()), int(pixel.y())))
    settle(0.5)
    feature = layer.getFeature(fid)
    walk["clicked_label"] = [feature["class_name"], feature["label_src"] if "label_src" in feature.fields().names()
                             else None]
    walk["selected_after_label"] = layer.selectedFeatureIds()
    nxt = panel.next_uncertain()
    walk["outlined_next"] = nxt
    extent = layer.extent()
    extent.scale(1.05)
    canvas.setExtent(extent)
    canvas.refresh()
    wait(lambda: not canvas.isDrawing(), 30)
    settle(2.5)  # the flash of "next uncertain" ends
    save(iface.mainWindow(), "parcel_labelling.png")
    panel.set_active(False)
    layer.rollBack()


def find_similar(plugin, layers: dict) -> None:
    """The map tool on a feature raster: a click on a pixel of the largest parcel on it, a right-click to run; the
    similarity layer comes back styled (its .qml), with the clicked pixel's cosine to itself, 1."""
    iface = qgis.utils.iface
    project = QgsProject.instance()
    canvas = iface.mapCanvas()
    for other in project.mapLayers().values():  # what earlier stages left: the sample's S2 date and parcels only
        if other.id() not in {layers["s2"][0].id(), layers["parcels"].id()}:
            project.layerTreeRoot().findLayer(other.id()).setItemVisibilityChecked(False)
    features = QgsRasterLayer(str(SAMPLE / "embedding.tif"), "Embedding (eo-ssl embed)")
    walk["feature_raster"] = features.isValid() and features.bandCount()
    project.addMapLayer(features)
    project.layerTreeRoot().findLayer(features.id()).setItemVisibilityChecked(False)  # picked, not shown
    iface.setActiveLayer(features)
    project.setCrs(features.crs())  # the map in the raster's CRS, set now (it follows the project's a moment later)
    canvas.setDestinationCrs(features.crs())
    view = features.extent()
    canvas.setExtent(view)
    canvas.refresh()
    wait(lambda: not canvas.isDrawing(), 30)
    reached("find_similar: feature raster loaded")
    plugin.toggle_similar_tool()
    walk["similar_tool_active"] = canvas.mapTool() is plugin.similar_tool
    reached("find_similar: tool active")

    def on_map(feature):
        return canvas.mapSettings().layerToMapCoordinates(layers["parcels"],
                                                          feature.geometry().pointOnSurface().asPoint())

    inside = [f for f in layers["parcels"].getFeatures() if view.contains(on_map(f))]  # on the feature raster
    parcel = max(inside, key=lambda f: f.geometry().area())
    point = on_map(parcel)
    pixel = canvas.getCoordinateTransform().transform(point)
    at = QPoint(int(pixel.x()), int(pixel.y()))
    clicked = canvas.getCoordinateTransform().toMapCoordinates(at.x(), at.y())  # what the tool reads
    walk["similar_click"] = [clicked.x(), clicked.y(), parcel["ct_name"] if "ct_name" in parcel.fields().names()
                             else None]
    QTest.mouseClick(canvas.viewport(), Qt.LeftButton, Qt.NoModifier, at)
    reached("find_similar: clicked")
    QTest.mouseClick(canvas.viewport(), Qt.RightButton, Qt.NoModifier, at)
    reached("find_similar: running")

    def similarity():
        return next((lyr for lyr in project.mapLayers().values() if lyr.name() == "Similarity"), None)

    walk["similar_layer"] = wait(lambda: similarity() is not None, 300)
    layer = similarity()
    if layer is None:
        walk["similar_messages"] = [w.text() for w in iface.messageBar().items()]
        return
    walk["similar_renderer"] = layer.renderer().type()
    walk["similar_styled"] = layer.renderer().type() == "singlebandpseudocolor"
    value, ok = layer.dataProvider().sample(canvas.mapSettings().mapToLayerCoordinates(layer, clicked), 1)
    walk["similar_at_click"] = round(float(value), 4) if ok else None
    root = project.layerTreeRoot()
    root.findLayer(layer.id()).setItemVisibilityChecked(True)
    layer.setOpacity(0.8)  # the scene under it
    parcels = root.findLayer(layers["parcels"].id())  # the parcels' outlines over it
    root.insertChildNode(0, parcels.clone())
    parcels.parent().removeChildNode(parcels)
    view.scale(1.1)
    canvas.setExtent(view)
    canvas.refresh()
    wait(lambda: not canvas.isDrawing(), 30)
    iface.messageBar().clearWidgets()  # the map, not the tool's "running…"
    settle(2.0)
    SIMILAR_SHOTS.mkdir(parents=True, exist_ok=True)
    save(iface.mainWindow(), "find_similar.png", SIMILAR_SHOTS)
    plugin.toggle_similar_tool()


def main() -> None:
    try:
        SHOTS.mkdir(parents=True, exist_ok=True)
        iface = qgis.utils.iface
        iface.mainWindow().resize(1440, 900)
        iface.mainWindow().showMaximized()
        plugin = qgis.utils.plugins["eo_ssl"]
        if STAGES == "find_similar":
            find_similar(plugin, load_sample())
        else:
            first_run(plugin)
            settings_page(plugin)
            diagnostics(plugin)
            layers = load_sample()
            run_dialog(plugin, layers)
            model_designer(plugin)
            labelling(plugin)
            find_similar(plugin, layers)
    except Exception:  # noqa: BLE001 - written to walk.json, the shell script fails on it
        walk["error"] = traceback.format_exc()
    WALK.write_text(json.dumps(walk, indent=1, default=str))
    # QGIS 3.22 aborts when a script quits it with layers (and an active layer) in the project: clear it first
    QgsProject.instance().clear()
    QTimer.singleShot(500, lambda: QApplication.instance().exit(0))


QTimer.singleShot(500, main)
