"""The contract between each algorithm and its backend command: with every option set away from its default, the
argument list an algorithm builds is accepted by the backend's own argparse parser (a renamed or removed backend
option fails here, not in a user's QGIS)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.plugin.conftest import require_command

pytestmark = pytest.mark.qgis


def _package(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "model.json").write_text(json.dumps({"format": "eo-ssl-model", "version": 1, "task": "segmentation"}))
    return path


def cases(flanders, tmp: Path) -> list[tuple[str, str, dict]]:
    s2 = [str(p) for p in flanders["s2"]]
    s1 = [str(p) for p in flanders["s1"]]
    store = tmp / "store"
    store.mkdir(exist_ok=True)
    model = _package(tmp / "model")
    common = {"S2": s2, "S2_BANDS": "B02,B03,B04,B05,B06,B07,B08,B8A,B11,B12", "S1": s1, "S1_BANDS": "VV,VH",
              "AOI": str(flanders["parcels"]), "POI_START": "2017-08-01", "POI_END": "2017-12-31"}
    return [
        ("prepare", "eo_ssl:prepare", {**common, "CRS": "EPSG:32631", "RESOLUTION": 20.0,
                                       "PARCELS": str(flanders["parcels"]), "CLASS_FIELD": "ct_name",
                                       "SPLIT": "by-block", "VAL_FRACTION": 0.2, "TEST_FRACTION": 0.1, "SEED": 3,
                                       "OVERWRITE": True, "OUTPUT": str(tmp / "o1")}),
        ("prepare", "eo_ssl:prepare", {"CHIPS": str(store), "EXTENT": "0,1,0,1 [EPSG:4326]",
                                       "OUTPUT": str(tmp / "o1b")}),
        ("pretrain", "eo_ssl:pretrain", {"DATA": str(store), "METHOD": "rs-byol", "VARIANT": "rgb-s1s2",
                                         "ENCODER": "resnet50", "EPOCHS": 3, "MAX_STEPS": 9, "BATCH_SIZE": 8,
                                         "CROP": 48, "LR": 0.05, "CHECKPOINT_EVERY": 10, "DEVICES": "cpu",
                                         "PRECISION": "32", "RESUME": True, "OUTPUT": str(tmp / "o2")}),
        ("pretrain", "eo_ssl:pretrain", {"DATA": str(store), "METHOD": "swav", "SENSORS": "s2+s1",
                                         "OVERWRITE": True, "OUTPUT": str(tmp / "o2b")}),
        ("finetune", "eo_ssl:finetune", {"DATA": str(store), "TASK": "classification", "ENCODER": "resnet34",
                                         "ARCH": "deeplabv3plus", "HEAD": "mlp", "FREEZE_ENCODER": True,
                                         "LABEL_FRACTION": 0.5, "EPOCHS": 2, "MAX_STEPS": 5, "BATCH_SIZE": 8,
                                         "CROP": 64, "LR": 0.01, "DATE": "2017-08-24", "DEVICES": "cpu",
                                         "OVERWRITE": True, "OUTPUT": str(tmp / "o3")}),
        ("finetune", "eo_ssl:finetune", {"DATA": str(store), "INIT": str(model), "OUTPUT": str(tmp / "o3b")}),
        ("evaluate", "eo_ssl:evaluate", {"INIT": str(model), "WITH_RANDOM": True, "DATA": str(store),
                                         "TASK": "segmentation", "PROTOCOL": "finetune", "PROBE_HEAD": "mlp",
                                         "K": 5, "LABEL_FRACTIONS": "1,0.5", "EPOCHS": 2, "MAX_STEPS": 4,
                                         "DEVICES": "cpu", "OUTPUT": str(tmp / "o4")}),
        ("predict", "eo_ssl:predict", {"MODEL": str(model), **common, "TILE": 128, "OVERLAP": 0.5, "DATE": "2017-08-24",
                                       "BATCH_SIZE": 2, "DEVICES": "cpu", "OUTPUT": str(tmp / "o5.tif"),
                                       "CONFIDENCE": str(tmp / "o5c.tif")}),
        ("label-parcels", "eo_ssl:label_parcels", {"MAP": str(flanders["labels"]),
                                                   "CONFIDENCE": str(flanders["labels"]),
                                                   "PARCELS": str(flanders["parcels"]), "ID_FIELD": "ct_code",
                                                   "CLASSES": str(model / "model.json"), "MIN_PIXELS": 2,
                                                   "MIN_FRACTION": 0.7, "MIN_CONFIDENCE": 0.6, "OVERWRITE": True,
                                                   "OUTPUT": str(tmp / "o6.gpkg")}),
        ("export-dataset", "eo_ssl:export_dataset", {"DATA": str(store), "PARCELS": str(flanders["parcels"]),
                                                     "CLASS_FIELD": "ct_name", "ID_FIELD": "ct_code",
                                                     "STATUS": "labelled,uncertain", "DATES": "median",
                                                     "SENSORS": "s2,s1", "CHIP": 32, "SPLIT": "by-block",
                                                     "OVERWRITE": True, "OUTPUT": str(tmp / "o7")}),
        ("export-dataset", "eo_ssl:export_dataset", {**common, "PARCELS": str(flanders["parcels"]),
                                                     "CLASS_FIELD": "ct_name", "OUTPUT": str(tmp / "o7b")}),
    ]


@pytest.mark.parametrize("index", range(11))
def test_algorithm_arguments_parse_in_the_backend(index: int, eo_provider, flanders, tmp_path: Path) -> None:
    from qgis.core import QgsApplication, QgsProcessingContext, QgsProcessingFeedback, QgsProject

    from qgis_plugin.backend_runner import options_to_args

    command, alg_id, params = cases(flanders, tmp_path)[index]
    require_command(command)
    from backend.cli import build_parser

    alg = QgsApplication.processingRegistry().createAlgorithmById(alg_id)
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    ok, message = alg.checkParameterValues(params, context)
    assert ok, message
    assert alg.prepare(params, context, QgsProcessingFeedback())
    assert alg._prepare_error is None, alg._prepare_error
    args = options_to_args(alg._options) + alg._extra
    parser = build_parser(command)
    try:
        parsed = parser.parse_args([command, *args, "--events"])
    except SystemExit as exc:  # argparse's way of saying "unknown option"
        pytest.fail(f"{alg_id}: the backend rejects {args}: exit {exc.code}")
    assert parsed.command == command
    # every option the algorithm set reached the backend with its value
    for key, value in alg._options.items():
        if value in (None, False, [], ""):
            continue
        got = getattr(parsed, key)
        if isinstance(value, list) or isinstance(got, list):  # nargs="+" options
            value = value if isinstance(value, list) else [value]
            assert [str(v) for v in got] == [str(v) for v in value], key
        elif value is True:
            assert got is True, key
        else:
            assert str(got) == str(value), (key, got, value)
