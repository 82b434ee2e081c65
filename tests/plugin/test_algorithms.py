"""The Processing algorithms in a real headless QGIS, each run through ``processing.run`` with a real backend
subprocess on real data (tiny settings). The chain prepare -> pretrain -> finetune -> evaluate -> predict ->
label-parcels -> export-dataset shares its outputs through module-scoped fixtures; a step whose backend command has
not landed yet is skipped with that reason (tests/plugin/conftest.py: require_command)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.plugin.conftest import Recorder, require_command, run_alg

pytestmark = pytest.mark.qgis

ALGORITHM_IDS = ["eo_ssl:prepare", "eo_ssl:pretrain", "eo_ssl:finetune", "eo_ssl:evaluate", "eo_ssl:predict",
                 "eo_ssl:embed", "eo_ssl:similar", "eo_ssl:label_parcels", "eo_ssl:export_dataset"]
MODEL_ID = "eo_ssl:predict_and_label"


def test_provider_registers_all_algorithms(eo_provider) -> None:
    from qgis.core import QgsApplication

    registry = QgsApplication.processingRegistry()
    assert sorted(a.id() for a in eo_provider.algorithms()) == sorted([*ALGORITHM_IDS, MODEL_ID])
    assert registry.algorithmById(MODEL_ID).group() == "5 Models"
    for alg_id in ALGORITHM_IDS:
        alg = registry.algorithmById(alg_id)
        assert alg is not None, alg_id
        assert alg.displayName()[0].isdigit()
        assert len(alg.shortHelpString()) > 200, f"{alg_id}: help text"
        assert alg.flags() & alg.FlagSupportsBatch and alg.flags() & alg.FlagCanCancel
        assert not alg.icon().isNull()
        outs = [o.name() for o in alg.outputDefinitions()]
        assert "OUTPUT" in outs, alg_id


def test_parameter_types(eo_provider) -> None:
    from qgis.core import (
        QgsApplication,
        QgsProcessingParameterDateTime,
        QgsProcessingParameterEnum,
        QgsProcessingParameterFeatureSource,
        QgsProcessingParameterField,
        QgsProcessingParameterMultipleLayers,
        QgsProcessingParameterRasterDestination,
        QgsProcessingParameterVectorDestination,
    )

    registry = QgsApplication.processingRegistry()
    prepare = registry.algorithmById("eo_ssl:prepare")
    assert isinstance(prepare.parameterDefinition("S2"), QgsProcessingParameterMultipleLayers)
    assert isinstance(prepare.parameterDefinition("S1"), QgsProcessingParameterMultipleLayers)
    assert isinstance(prepare.parameterDefinition("AOI"), QgsProcessingParameterFeatureSource)
    assert isinstance(prepare.parameterDefinition("CLASS_FIELD"), QgsProcessingParameterField)
    assert prepare.parameterDefinition("CLASS_FIELD").parentLayerParameterName() == "PARCELS"
    assert isinstance(prepare.parameterDefinition("POI_START"), QgsProcessingParameterDateTime)
    pretrain = registry.algorithmById("eo_ssl:pretrain")
    method = pretrain.parameterDefinition("METHOD")
    assert isinstance(method, QgsProcessingParameterEnum)
    assert method.options() == ["rs-byol", "byol", "moco-v2", "simsiam", "barlow-twins", "swav"]
    assert pretrain.parameterDefinition("VARIANT").options() == ["auto", "single", "three", "s2-only", "rgb-s1s2"]
    assert pretrain.parameterDefinition("VARIANT").defaultValue() == "auto"
    predict = registry.algorithmById("eo_ssl:predict")
    assert isinstance(predict.parameterDefinition("OUTPUT"), QgsProcessingParameterRasterDestination)
    assert isinstance(predict.parameterDefinition("CONFIDENCE"), QgsProcessingParameterRasterDestination)
    label = registry.algorithmById("eo_ssl:label_parcels")
    assert isinstance(label.parameterDefinition("OUTPUT"), QgsProcessingParameterVectorDestination)


def test_prepare_runs_the_backend_on_real_data(prepared, flanders) -> None:
    results, feedback, out = prepared["results"], prepared["feedback"], prepared["out"]
    assert Path(results["OUTPUT"]) == out
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["sensors"]["s2"]["bands"][:3] == ["B02", "B03", "B04"]
    assert len(manifest["sensors"]["s2"]["dates"]) == 2 and "s1" in manifest["sensors"]
    assert [c["name"] for c in manifest["labels"]["classes"]]
    assert results["CLASSES"] == len(manifest["labels"]["classes"])
    assert "64 x 64" in results["GRID"]
    # the command line shown in the log names the awkward paths as single, intact arguments
    assert feedback.commands and "-m backend prepare" in feedback.commands[0]
    argv = manifest["provenance"]["command"]
    assert argv[argv.index("--s2") + 1:argv.index("--s2") + 3] == [str(p) for p in flanders["s2"]]
    assert argv[argv.index("--parcels") + 1] == str(flanders["parcels"])
    assert feedback.progress_values and max(feedback.progress_values) == pytest.approx(100.0)
    assert any("Sentinel-2" in line for line in feedback.infos)


def test_prepare_with_selected_aoi_features_writes_a_temporary_geopackage(eo_provider, flanders,
                                                                          awkward_dir: Path) -> None:
    """AOI = two selected parcels of a project layer ('selected features only'): the backend gets a temporary
    GeoPackage with just those two, and the grid shrinks to their extent."""
    from qgis.core import QgsProcessingFeatureSourceDefinition, QgsProject, QgsVectorLayer

    layer = QgsVectorLayer(str(flanders["parcels"]), "parcels", "ogr")
    assert layer.isValid()
    QgsProject.instance().addMapLayer(layer)
    try:
        ids = sorted(f.id() for f in layer.getFeatures())[:2]
        layer.selectByIds(ids)
        out = awkward_dir / "aoi selection"
        feedback = Recorder()
        results = run_alg("eo_ssl:prepare", {
            "S2": [str(flanders["s2"][0])],
            "AOI": QgsProcessingFeatureSourceDefinition(layer.id(), True),
            "OUTPUT": str(out)}, feedback)
        manifest = json.loads((Path(results["OUTPUT"]) / "manifest.json").read_text())
        assert manifest["grid"]["width"] * manifest["grid"]["height"] < 64 * 64
        command = feedback.commands[0]
        assert "--aoi" in command and str(flanders["parcels"]) not in command  # a temporary file, not the source
    finally:
        QgsProject.instance().removeMapLayer(layer.id())
        del layer


def test_prepare_with_an_extent_aoi(eo_provider, flanders, awkward_dir: Path) -> None:
    from qgis.core import QgsRasterLayer

    layer = QgsRasterLayer(str(flanders["s2"][0]), "s2")
    e = layer.extent()
    crs = layer.crs().authid()
    del layer
    extent = f"{e.xMinimum()},{e.xMinimum() + 320},{e.yMinimum()},{e.yMinimum() + 320} [{crs}]"
    results = run_alg("eo_ssl:prepare", {"S2": [str(flanders["s2"][0])], "EXTENT": extent,
                                         "OUTPUT": str(awkward_dir / "extent aoi")})
    manifest = json.loads((Path(results["OUTPUT"]) / "manifest.json").read_text())
    assert (manifest["grid"]["width"], manifest["grid"]["height"]) == (32, 32)


def test_a_backend_error_is_a_processing_exception_with_the_hint(eo_provider, flanders, awkward_dir: Path) -> None:
    """A class field that does not exist: the backend's error message and hint reach the user; QGIS goes on."""
    from qgis.core import QgsProcessingException

    feedback = Recorder()
    with pytest.raises(QgsProcessingException) as info:
        run_alg("eo_ssl:prepare", {"S2": [str(flanders["s2"][0])], "PARCELS": str(flanders["parcels"]),
                                   "CLASS_FIELD": "ct_name", "POI_START": "2030-01-01",
                                   "OUTPUT": str(awkward_dir / "never")}, feedback)
    text = str(info.value)
    assert "eo-ssl prepare failed" in text and "What to do:" in text
    assert not (awkward_dir / "never").exists()
    # QGIS is alive and the provider still works
    test_provider_registers_all_algorithms(eo_provider)


def test_prepare_output_in_a_model_of_two_runs_in_batch_style(eo_provider, flanders, awkward_dir: Path) -> None:
    """The same algorithm instance template runs twice with different parameters (as batch processing does)."""
    from qgis.core import QgsApplication, QgsProcessingContext, QgsProcessingFeedback

    alg = QgsApplication.processingRegistry().createAlgorithmById("eo_ssl:prepare")
    outs = []
    for i, s2 in enumerate(flanders["s2"]):
        context = QgsProcessingContext()
        feedback = QgsProcessingFeedback()
        out = awkward_dir / f"batch {i}"
        results, ok = alg.run({"S2": [str(s2)], "OUTPUT": str(out)}, context, feedback)
        assert ok, feedback.textLog()
        outs.append(Path(results["OUTPUT"]))
    assert all((o / "manifest.json").is_file() for o in outs)


def _gpkg_rows(path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(path) as con:
        return con.execute(sql).fetchall()


@pytest.fixture(scope="module")
def labelled_from_labels(eo_provider_module, flanders, awkward_dir: Path) -> dict:
    """Label parcels from a real class raster (the patch's WorldCereal crop-type codes stand in for a map)."""
    require_command("label-parcels")
    out = awkward_dir / "labelled ü.gpkg"
    feedback = Recorder()
    results = run_alg("eo_ssl:label_parcels", {"MAP": str(flanders["labels"]), "PARCELS": str(flanders["parcels"]),
                                                "OUTPUT": str(out)}, feedback)
    return {"results": results, "feedback": feedback, "out": out}


def test_label_parcels_on_a_real_class_raster(labelled_from_labels) -> None:
    results, out = labelled_from_labels["results"], labelled_from_labels["out"]
    assert Path(results["OUTPUT"]) == out and out.is_file()
    rows = _gpkg_rows(out, "SELECT status, count(*) FROM parcels GROUP BY status")
    counts = dict(rows)
    assert sum(counts.values()) == 19
    assert results["LABELLED"] == counts.get("labelled", 0) > 10
    assert _gpkg_rows(out, "SELECT count(*) FROM parcels WHERE class_id IS NOT NULL")[0][0] >= results["LABELLED"]


def test_export_dataset_from_labelled_parcels(prepared, labelled_from_labels, awkward_dir: Path) -> None:
    require_command("export-dataset")
    out = awkward_dir / "dataset ü"
    results = run_alg("eo_ssl:export_dataset", {
        "DATA": str(prepared["out"]), "PARCELS": str(labelled_from_labels["out"]), "CLASS_FIELD": "class_name",
        "CHIP": 16, "OUTPUT": str(out)})
    assert Path(results["OUTPUT"]) == out
    assert Path(results["INDEX"]).is_file() and Path(results["DATASET_JSON"]).is_file()
    assert results["CHIPS"] > 0
    meta = json.loads(Path(results["DATASET_JSON"]).read_text())
    assert meta["classes"]
    n_index = _gpkg_rows(Path(results["INDEX"]), "SELECT count(*) FROM sqlite_master WHERE type='table'")[0][0]
    assert n_index > 0


@pytest.mark.parametrize("method", ["rs-byol", "byol", "moco-v2", "simsiam", "barlow-twins", "swav"])
def test_pretrain_offers_every_method(eo_provider, method: str, tmp_path: Path) -> None:
    """Every method reaches the backend's command line (the variant only for rs-byol)."""
    from qgis.core import QgsApplication, QgsProcessingContext, QgsProcessingFeedback

    from qgis_plugin.backend_runner import options_to_args

    alg = QgsApplication.processingRegistry().createAlgorithmById("eo_ssl:pretrain")
    params = {"DATA": str(tmp_path), "METHOD": method, "VARIANT": "three", "MAX_STEPS": 7,
              "EXTRA_ARGS": "--threads 2", "OUTPUT": str(tmp_path / "model")}
    assert alg.prepare(params, QgsProcessingContext(), QgsProcessingFeedback())
    args = options_to_args(alg._options) + alg._extra
    assert args[args.index("--method") + 1] == method
    assert ("--variant" in args) == (method == "rs-byol")
    assert args[args.index("--max-steps") + 1] == "7" and args[-2:] == ["--threads", "2"]
    assert args[args.index("--out") + 1] == str(tmp_path / "model")


def test_pretrain_runs_and_writes_a_model_package(pretrained) -> None:
    out, feedback = pretrained["out"], pretrained["feedback"]
    meta = json.loads((out / "model.json").read_text())
    assert meta["task"] == "pretrain" and meta["method"] == "rs-byol"
    assert (out / "weights.safetensors").is_file()
    assert any("loss" in line for line in feedback.infos), feedback.infos
    assert max(feedback.progress_values) == pytest.approx(100.0)
    # Lightning's chatter stays out of the Processing log (backend/train/runner.py quiets it at the source)
    log = feedback.textLog()
    for noise in ("litlogger", "Tip:", "is deprecated", "GPU available", "TPU available", "`Trainer.fit` stopped"):
        assert noise not in log, noise


@pytest.fixture(scope="module")
def s2_only_store(eo_provider_module, flanders, awkward_dir: Path) -> Path:
    """A chip store of one Sentinel-2 date and nothing else."""
    require_command("prepare")
    out = awkward_dir / "s2 only ü"
    run_alg("eo_ssl:prepare", {"S2": [str(flanders["s2"][0])], "OUTPUT": str(out)})
    return out


def test_the_default_pretraining_works_on_sentinel2_only_data(s2_only_store, awkward_dir: Path) -> None:
    """RS-BYOL's default variant 'auto' is 's2-only' on a store without Sentinel-1 (the backend's own default,
    'single', would fail there after the data were prepared)."""
    require_command("pretrain")
    out = awkward_dir / "pretrained s2 only"
    feedback = Recorder()
    run_alg("eo_ssl:pretrain", {"DATA": str(s2_only_store), "ENCODER": "resnet18", "EPOCHS": 1, "MAX_STEPS": 2,
                                "BATCH_SIZE": 4, "CROP": 32, "DEVICES": "cpu", "OUTPUT": str(out)}, feedback)
    meta = json.loads((out / "model.json").read_text())
    assert (meta["method"], meta["variant"]) == ("rs-byol", "s2-only")
    assert "RS-BYOL variant 'auto': 's2-only' (the chip store has no Sentinel-1)." in feedback.infos
    assert "--variant s2-only" in feedback.commands[0]


@pytest.mark.parametrize("params", [{"METHOD": "rs-byol", "VARIANT": "single"},
                                    {"METHOD": "rs-byol", "VARIANT": "rgb-s1s2"},
                                    {"METHOD": "byol", "SENSORS": "s2+s1"}])
def test_a_pretraining_that_needs_sentinel1_is_refused_before_it_starts(s2_only_store, tmp_path: Path,
                                                                        params: dict) -> None:
    """In the plugin's words, before any backend process starts (the dialog of the toolbox shows it at once)."""
    from qgis.core import QgsApplication, QgsProcessingContext, QgsProcessingException

    alg = QgsApplication.processingRegistry().algorithmById("eo_ssl:pretrain")
    full = {"DATA": str(s2_only_store), "OUTPUT": str(tmp_path / "never"), **params}
    ok, message = alg.checkParameterValues(full, QgsProcessingContext())
    assert not ok and "The chip store has no Sentinel-1 data" in message and "--" not in message
    feedback = Recorder()
    with pytest.raises(QgsProcessingException, match="no Sentinel-1 data"):
        run_alg("eo_ssl:pretrain", full, feedback)
    assert feedback.commands == [] and not (tmp_path / "never").exists()


def test_finetune_runs_and_writes_a_model_package_with_classes(finetuned, prepared) -> None:
    meta = json.loads((finetuned["out"] / "model.json").read_text())
    assert meta["task"] == "segmentation"
    manifest = json.loads((prepared["out"] / "manifest.json").read_text())
    assert [c["name"] for c in meta["classes"]] == [c["name"] for c in manifest["labels"]["classes"]]


def test_evaluate_writes_the_report(request, prepared, awkward_dir: Path) -> None:
    require_command("evaluate")
    try:
        model = request.getfixturevalue("pretrained")["out"]
    except pytest.skip.Exception:
        model = request.getfixturevalue("finetuned")["out"]
    out = awkward_dir / "report ü"
    results = run_alg("eo_ssl:evaluate", {"INIT": str(model), "DATA": str(prepared["out"]), "PROTOCOL": "knn",
                                          "LABEL_FRACTIONS": "1", "DEVICES": "cpu", "OUTPUT": str(out)})
    assert Path(results["REPORT"]).is_file() and results["REPORT"].endswith(".html")
    assert Path(results["REPORT_JSON"]).is_file()


def render_map_with_legend(layers, legend_layer, path: Path, size: int = 520) -> None:
    """The layers rendered as the map canvas renders them (QgsMapRendererParallelJob), with the class legend of
    ``legend_layer``'s paletted renderer drawn beside the map."""
    from qgis.core import QgsMapRendererParallelJob, QgsMapSettings
    from qgis.PyQt.QtCore import QRectF, QSize, Qt
    from qgis.PyQt.QtGui import QColor, QFont, QImage, QPainter

    settings = QgsMapSettings()
    settings.setLayers(layers)
    settings.setDestinationCrs(legend_layer.crs())
    settings.setExtent(legend_layer.extent())
    settings.setOutputSize(QSize(size, size))
    settings.setBackgroundColor(QColor("white"))
    job = QgsMapRendererParallelJob(settings)
    job.start()
    job.waitForFinished()
    classes = legend_layer.renderer().classes()
    image = QImage(size + 300, size, QImage.Format.Format_ARGB32)
    image.fill(QColor("white"))
    painter = QPainter(image)
    painter.drawImage(0, 0, job.renderedImage())
    font = QFont()
    font.setPointSize(11)
    painter.setFont(font)
    painter.drawText(QRectF(size + 16, 12, 280, 22), Qt.AlignmentFlag.AlignLeft, legend_layer.name())
    for i, cls in enumerate(classes):
        y = 44 + i * 26
        painter.fillRect(QRectF(size + 16, y, 20, 16), cls.color)
        painter.drawText(QRectF(size + 44, y - 2, 250, 20), Qt.AlignmentFlag.AlignLeft, cls.label)
    painter.end()
    assert image.save(str(path))


def test_predict_loads_a_styled_map_and_a_confidence_layer(finetuned, flanders, awkward_dir: Path,
                                                           docs_img: Path) -> None:
    """runAndLoadResults: the outputs are added to the project, and the post-processors (main thread) give the map its
    class style from the .qml sidecar and the confidence its ramp."""
    require_command("predict")
    import processing
    from qgis.core import QgsPalettedRasterRenderer, QgsProject, QgsSingleBandPseudoColorRenderer

    out = awkward_dir / "prediction ü"
    results = processing.runAndLoadResults("eo_ssl:predict", {
        "MODEL": str(finetuned["out"]), "S2": [str(p) for p in flanders["s2"]], "S1": [str(p) for p in flanders["s1"]],
        "TILE": 64, "DEVICES": "cpu", "OUTPUT": str(out / "map.tif"), "CONFIDENCE": str(out / "confidence.tif")})
    assert Path(results["OUTPUT"]).is_file() and Path(results["CONFIDENCE"]).is_file()
    assert (out / "map.qml").is_file()
    project = QgsProject.instance()
    try:
        layers = {Path(lyr.source()).name: lyr for lyr in project.mapLayers().values()}
        assert isinstance(layers["map.tif"].renderer(), QgsPalettedRasterRenderer)
        meta = json.loads((finetuned["out"] / "model.json").read_text())
        labels = {c.label for c in layers["map.tif"].renderer().classes()}
        assert {c["name"] for c in meta["classes"]} <= labels
        assert isinstance(layers["confidence.tif"].renderer(), QgsSingleBandPseudoColorRenderer)
        assert layers["map.tif"].name().startswith("Land cover") and layers["confidence.tif"].name() == "Confidence"
        from qgis.core import QgsFillSymbol, QgsSingleSymbolRenderer, QgsVectorLayer

        outlines = QgsVectorLayer(str(flanders["parcels"]), "parcels", "ogr")
        outlines.setRenderer(QgsSingleSymbolRenderer(QgsFillSymbol.createSimple(
            {"color": "0,0,0,0", "outline_color": "30,30,30,255", "outline_width": "0.3"})))
        render_map_with_legend([outlines, layers["map.tif"]], layers["map.tif"], docs_img / "prediction.png")
        del outlines
    finally:
        project.removeAllMapLayers()


def test_the_pixel_model_fine_tunes_and_maps_through_processing(prepared, flanders, awkward_dir: Path) -> None:
    """The few-label path from QGIS: Fine-tune with the pixel model (spectra of every date, a random forest), then
    Predict with it: the map arrives styled."""
    require_command("finetune")
    out = awkward_dir / "pixel model ü"
    feedback = Recorder()
    run_alg("eo_ssl:finetune", {"DATA": str(prepared["out"]), "ARCH": "pixel", "CLASSIFIER": "rf",
                                "DEVICES": "cpu", "OUTPUT": str(out)}, feedback)
    meta = json.loads((out / "model.json").read_text())
    assert meta["architecture"]["family"] == "pixel" and meta["architecture"]["classifier"] == "rf"
    assert "--arch pixel" in feedback.commands[0] and "--init" not in feedback.commands[0]  # spectra only
    results = run_alg("eo_ssl:predict", {"MODEL": str(out), "S2": [str(p) for p in flanders["s2"]],
                                         "S1": [str(p) for p in flanders["s1"]], "POI_START": "2017-08-01",
                                         "POI_END": "2017-12-31", "DEVICES": "cpu",
                                         "OUTPUT": str(awkward_dir / "pixel map ü.tif"), "CONFIDENCE": None})
    assert Path(results["OUTPUT"]).is_file()


def test_evaluate_compares_the_paths_by_default(prepared, awkward_dir: Path) -> None:
    require_command("evaluate")
    out = awkward_dir / "compare ü"
    feedback = Recorder()
    results = run_alg("eo_ssl:evaluate", {"DATA": str(prepared["out"]), "LABEL_FRACTIONS": "1", "DEVICES": "cpu",
                                          "PATHS": "classic", "MAX_TRAIN_PIXELS": 800,
                                          "OUTPUT": str(out)}, feedback)
    report = json.loads(Path(results["REPORT_JSON"]).read_text())
    assert report["protocol"] == "compare" and "--protocol compare" in feedback.commands[0]
    assert report["summary"]["text"].startswith("Use ")
    assert report["summary"]["text"] in Path(results["REPORT"]).read_text()


def test_embed_writes_a_multiband_raster(prepared, flanders, awkward_dir: Path, tmp_path: Path) -> None:
    """An encoder package made here (random weights over the store's bands) embeds the Flanders series."""
    require_command("embed")
    from tests.backend.test_pixel_classifier import random_encoder_package

    pkg = random_encoder_package(prepared["out"], tmp_path / "encoder")
    out = awkward_dir / "embedding ü.tif"
    run_alg("eo_ssl:embed", {"MODEL": str(pkg), "S2": [str(p) for p in flanders["s2"]], "DIM": 4, "DTYPE": "uint8",
                             "DEVICES": "cpu", "OUTPUT": str(out)})
    import rasterio

    with rasterio.open(out) as src:
        assert src.count == 4 and src.dtypes[0] == "uint8"



def test_names_and_messages_of_the_mapping_algorithms(eo_provider, tmp_path: Path) -> None:
    """The map is named after the model (a pixel classifier without an embedding: 'pixel vote', not 'segmentation
    None'); labelled parcels after their file (two batch outputs are told apart); Predict with a missing model folder
    says it does not exist and what to pick."""
    from qgis.core import QgsApplication, QgsProcessingContext, QgsProcessingException

    from qgis_plugin.algorithms.label_parcels import parcels_layer_name
    from qgis_plugin.algorithms.model_inputs import model_folder
    from qgis_plugin.algorithms.predict import _model_name

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
        model_folder(alg, {"MODEL": str(tmp_path / "gone")}, context)
    assert "does not exist" in str(exc.value) and "model.json" in str(exc.value) and "Fine-tune" in str(exc.value)
    (tmp_path / "plain").mkdir()
    with pytest.raises(QgsProcessingException, match="no model.json"):
        model_folder(alg, {"MODEL": str(tmp_path / "plain")}, context)
