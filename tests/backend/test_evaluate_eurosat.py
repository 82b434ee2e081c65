"""``eo-ssl evaluate`` on the real EuroSAT-MS chips: the report folder and its numbers.

kNN on the features of a *random* resnet18 already separates EuroSAT's classes far above chance (10 classes: 0.1);
the report holds every number in JSON, a self-contained HTML page (images embedded, no links out), and the three
plots. A per-band (RS-BYOL single-channel) package is evaluated through band-averaged features beside 'random'.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from backend.data.chipstore import SPLITS, ChipStore
from backend.models.encoders import create_encoder, embed
from backend.models.package import save_package
from backend.train.probes import KNN_TEMPERATURE, knn_predict
from tests.backend.model_helpers import command_ok, eurosat_store, run_command, torch_threads

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def store(shared_data, tmp_path_factory) -> Path:
    return eurosat_store(shared_data, tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def knn_report(store, tmp_path_factory) -> tuple[Path, list[dict]]:
    out = tmp_path_factory.mktemp("eval") / "report"
    events = command_ok("evaluate", ["--init", "random", "--data", store, "--protocol", "knn",
                                     "--label-fractions", "1,0.25", "--out", out, "--devices", "cpu"])
    return out, events


def test_report_files(knn_report):
    out, events = knn_report
    assert sorted(p.name for p in out.iterdir()) == [".eo-ssl-output", "confusion.png", "label_efficiency.png",
                                                     "report.html", "report.json", "tsne.png"]
    for name in ("confusion.png", "label_efficiency.png", "tsne.png"):
        assert (out / name).read_bytes()[:8] == PNG
    html = (out / "report.html").read_text()
    assert html.count('src="data:image/png;base64,') == 3  # the three plots, embedded
    assert not re.search(r'(src|href)="(?!data:)', html)  # nothing linked: self-contained
    assert "overall accuracy" in html and "SeaLake" in html
    artifacts = {Path(e["path"]).name for e in events if e["event"] == "artifact"}
    assert {"report.html", "report.json"} <= artifacts
    assert not list(out.parent.glob("*.tmp-*"))


def test_knn_on_random_features_is_above_chance(knn_report):
    report = json.loads((knn_report[0] / "report.json").read_text())
    assert report["protocol"] == "knn" and report["task"] == "classification" and report["k"] == 20
    assert [r["fraction"] for r in report["results"]] == [1.0, 0.25]
    full, quarter = report["results"]
    n_val = full["metrics"]["n"]
    assert n_val > 20 and np.array(full["confusion"]).sum() == n_val
    assert full["metrics"]["oa"] > 0.25  # chance is 0.1
    for r in report["results"]:
        m = r["metrics"]
        assert all(0 <= m[k] <= 1 for k in ("oa", "f1_macro", "aa", "miou"))
        assert m["miou"] <= m["f1_macro"] + 1e-9  # IoU <= F1 per class
        assert set(m["iou_per_class"]) == {c["name"] for c in report["classes"]}
    assert quarter["n_train"] < full["n_train"]


def test_knn_vote_is_weighted():
    train = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]], np.float32)
    labels = np.array([0, 0, 1])
    # the single class-1 neighbour is much closer than the two class-0 ones: the weighted vote follows it
    assert knn_predict(train, labels, np.array([[0.05, 1.0]], np.float32), 2, k=3).tolist() == [1]
    assert knn_predict(train, labels, np.array([[1.0, 0.05]], np.float32), 2, k=3).tolist() == [0]


def _hand_written_knn(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, num_classes: int, k: int
                      ) -> np.ndarray:
    """The vote evaluate used before lightly's: scatter-add of exp(sim / T) per class, argmax."""
    tr = F.normalize(torch.from_numpy(train_x).float(), dim=1)
    te = F.normalize(torch.from_numpy(test_x).float(), dim=1)
    top, idx = (te @ tr.T).topk(max(1, min(k, len(tr))), dim=1)
    votes = torch.zeros(len(top), num_classes).scatter_add_(1, torch.from_numpy(train_y).long()[idx],
                                                            (top / KNN_TEMPERATURE).exp())
    return votes.argmax(1).numpy()


def test_knn_is_lightlys_vote_with_the_same_predictions(store):
    """lightly's kNN sorts the vote scores (an exact tie could break differently from an argmax): on the features of
    a seeded resnet18 over the real EuroSAT-MS chips its predictions equal the hand-written vote's, for every k."""
    cs = ChipStore(store)
    x = np.asarray(cs.array("chips"), np.float32)
    x = (x - x.mean((0, 2, 3), keepdims=True)) / x.std((0, 2, 3), keepdims=True)
    y, split = np.asarray(cs.array("chip_labels")), np.asarray(cs.array("chip_split"))
    torch.manual_seed(0)
    with torch_threads(1):
        feats = embed(create_encoder("resnet18", x.shape[1]), torch.from_numpy(x)).numpy()
    train, val = split == SPLITS["train"], split != SPLITS["train"]
    assert train.sum() > 100 and val.sum() > 40
    for k in (1, 5, 20, 500):  # 500: more than the training chips (capped)
        ours = knn_predict(feats[train], y[train], feats[val], 10, k=k)
        assert ours.tolist() == _hand_written_knn(feats[train], y[train], feats[val], 10, k).tolist(), k
    assert (knn_predict(feats[train], y[train], feats[val], 10, k=20) == y[val]).mean() > 0.25  # chance: 0.1


def test_linear_mlp_probe_of_a_per_band_package_and_random(store, tmp_path):
    torch.manual_seed(0)
    enc = create_encoder("resnet18", 1)
    bands = ["B02", "B03", "B04", "B08"]
    save_package(tmp_path / "rsbyol", {f"encoder.{k}": v for k, v in enc.state_dict().items()}, {
        "task": "pretrain", "method": "rs-byol", "variant": "single",
        "architecture": {"family": "timm", "encoder": "resnet18", "in_chans": 1},
        "input": {"channels": [["s2", b] for b in bands], "channel_mode": "per-band", "crop": 64},
        "grid": {"resolution": 10.0}, "normalization": {"s2": {b: {"mean": 1200.0, "std": 600.0} for b in bands}}})
    out = tmp_path / "report"
    command_ok("evaluate", ["--init", tmp_path / "rsbyol", "random", "--data", store, "--protocol", "linear",
                            "--probe-head", "mlp", "--probe-epochs", "30", "--label-fractions", "1",
                            "--tsne-samples", "40", "--out", out, "--devices", "cpu"])
    report = json.loads((out / "report.json").read_text())
    assert [i["kind"] for i in report["inits"]] == ["package", "random"]
    assert report["probe_head"] == "mlp" and len(report["results"]) == 2
    assert all(r["metrics"]["oa"] > 0.15 for r in report["results"])


def test_bad_fractions_refused(store, tmp_path):
    rc, events = run_command("evaluate", ["--init", "random", "--data", store, "--label-fractions", "1,2",
                                          "--out", tmp_path / "r"])
    assert rc == 2 and events[-2]["code"] == "bad_argument" and not (tmp_path / "r").exists()
