"""The README's pictures, taken in a real QGIS (3.22) window: a startup script for ``qgis --code`` (run it with
``bash scripts/screenshots.sh``, which installs the plugin zip into a clean profile under Xvfb first).

It walks the way a new user walks and checks each stage as it goes (the checks land in EO_SSL_WALK, a JSON file):

1. the first-run panel opens by itself (no backend anywhere), with the commands it would run -> first_run.png;
   "Use an existing Python" then makes the given interpreter the backend;
2. Settings > Options… > eo-ssl -> settings.png; Raster > eo-ssl > Backend diagnostics -> diagnostics.png;
3. the dialog on the Flanders sample (2 Sentinel-2 dates, 1 Sentinel-1 date, 19 LPIS parcels): prepare, a short
   RS-BYOL pre-training ('auto' -> single), fine-tuning, prediction and parcel labelling -> dialog.png;
4. the example model opened in the Model Designer -> model_designer.png;
5. the parcel labelling tool on the labelled parcels: next uncertain parcel, key 2, a click -> parcel_labelling.png.

Environment: EO_SSL_SHOTS (output folder), EO_SSL_WALK (the checks), EO_SSL_SAMPLE (worldcereal_flanders_2018
folder), EO_SSL_WORK (a scratch folder), EO_SSL_BACKEND (the backend Python to choose in the panel).
"""

import json
import os
import time
import traceback
from pathlib import Path

import qgis.utils
from qgis.core import (
    QgsContrastEnhancement,
    QgsFillSymbol,
    QgsMultiBandColorRenderer,
    QgsProject,
    QgsRasterBandStats,
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
walk: dict = {}


def wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():
        QApplication.processEvents()
        time.sleep(0.05)
    return bool(predicate())


def settle(seconds: float = 0.5) -> None:
    wait(lambda: False, seconds)


def save(widget, name: str) -> None:
    settle()
    assert widget.grab().save(str(SHOTS / name)), name
    walk.setdefault("shots", []).append(name)


def true_colour(layer) -> None:
    renderer = QgsMultiBandColorRenderer(layer.dataProvider(), 3, 2, 1)
    for band, setter in ((3, renderer.setRedContrastEnhancement), (2, renderer.setGreenContrastEnhancement),
                         (1, renderer.setBlueContrastEnhancement)):
        stats = layer.dataProvider().bandStatistics(band, QgsRasterBandStats.All)
        ce = QgsContrastEnhancement(layer.dataProvider().dataType(band))
        ce.setContrastEnhancementAlgorithm(QgsContrastEnhancement.StretchToMinimumMaximum)
        ce.setMinimumValue(stats.minimumValue)
        ce.setMaximumValue(stats.mean + 2 * stats.stdDev)
        setter(ce)
    layer.setRenderer(renderer)


def first_run(plugin) -> None:
    walk["panel_opened"] = wait(lambda: plugin.setup_dialog is not None and plugin.setup_dialog.isVisible(), 30)
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
    plugin.show_dialog()
    dlg = plugin.dialog
    dlg.parcels_layer.setLayer(layers["parcels"])
    dlg.class_field.setField("ct_name")
    dlg.poi_check.setChecked(True)
    dlg.poi_start.setDate(dlg.poi_start.date().fromString("2017-08-01", "yyyy-MM-dd"))
    dlg.poi_end.setDate(dlg.poi_end.date().fromString("2017-12-31", "yyyy-MM-dd"))
    dlg.step_pretrain.setChecked(True)
    dlg.step_finetune.setChecked(True)
    dlg.step_predict.setChecked(True)
    dlg.step_label.setChecked(True)
    dlg.method.setCurrentText("rs-byol")
    dlg.encoder.setCurrentText("resnet18")
    dlg.epochs.setValue(1)
    dlg.max_steps.setValue(30)
    dlg.batch_size.setValue(8)
    dlg.crop.setValue(32)
    dlg.ft_epochs.setValue(50)
    dlg.tile.setValue(64)
    dlg.device.setCurrentIndex(dlg.device.findData("cpu"))
    dlg.output_dir.setFilePath(str(WORK / "dialog run"))
    walk["s1_list"] = [dlg.s1_list.item(i).text() for i in range(dlg.s1_list.count())]
    walk["variant_hint"] = dlg.variant_hint.text()
    finished: list = []
    dlg.jobFinished.connect(lambda ok, msg: finished.append((ok, msg)))
    walk["job_started"] = dlg.start_job()
    walk["job_finished"] = wait(lambda: bool(finished), 3000)
    walk["job"] = finished[0] if finished else None
    dlg.tabs.setCurrentIndex(1)
    dlg.resize(1180, 760)
    save(dlg, "dialog.png")
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
    found = project.mapLayersByName("Labelled parcels")
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


def main() -> None:
    try:
        SHOTS.mkdir(parents=True, exist_ok=True)
        iface = qgis.utils.iface
        iface.mainWindow().resize(1440, 900)
        iface.mainWindow().showMaximized()
        plugin = qgis.utils.plugins["eo_ssl"]
        first_run(plugin)
        settings_page(plugin)
        diagnostics(plugin)
        layers = load_sample()
        run_dialog(plugin, layers)
        model_designer(plugin)
        labelling(plugin)
    except Exception:  # noqa: BLE001 - written to walk.json, the shell script fails on it
        walk["error"] = traceback.format_exc()
    WALK.write_text(json.dumps(walk, indent=1, default=str))
    # QGIS 3.22 aborts when a script quits it with layers (and an active layer) in the project: clear it first
    QgsProject.instance().clear()
    QTimer.singleShot(500, lambda: QApplication.instance().exit(0))


QTimer.singleShot(500, main)
