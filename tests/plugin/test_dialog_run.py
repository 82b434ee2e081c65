"""The toolbar dialog running real jobs in the headless QGIS: filled programmatically, a short job with progress,
its checks before anything starts, the few-label default with the compare report, and a failing step."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.plugin.conftest import command_available, require_command, wait_until

pytestmark = pytest.mark.qgis


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


