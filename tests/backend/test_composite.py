"""``--date composite``: a 2D model (the U-Net) reads the per-band median of every valid observation of the period
(Flanders: 36 S2 dates with clouds masked, 40 S1 dates), in training and in prediction alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from backend.data.chipstore import ChipStore
from backend.data.dates import composite_of
from tests.backend.model_helpers import FAST, command_ok, read_meta
from tests.backend.test_pixel_classifier import flanders_inputs, flanders_store


def test_composite_is_the_median_of_the_valid_dates(shared_data: Path,
                                                    tmp_path_factory: pytest.TempPathFactory) -> None:
    store = ChipStore(flanders_store(shared_data, tmp_path_factory.getbasetemp()))
    values = np.asarray(store.array("s2")[20:24, 30:34], np.float32)  # (4, 4, 36, 10) real reflectances
    valid = np.asarray(store.array("s2_valid")[20:24, 30:34]).astype(bool)
    valid[0, 0] = False  # a pixel never seen
    med, ok = composite_of(values, valid)
    assert not ok[0, 0] and (med[0, 0] == 0).all()
    r, c = 2, 3
    expected = np.median(values[r, c][valid[r, c]], axis=0)
    assert np.allclose(med[r, c], expected) and ok[r, c]


@pytest.mark.slow
def test_unet_on_the_composite_trains_and_predicts(shared_data: Path, tmp_path_factory: pytest.TempPathFactory,
                                                  tmp_path: Path) -> None:
    store = flanders_store(shared_data, tmp_path_factory.getbasetemp())
    model = tmp_path / "model"
    command_ok("finetune", ["--data", store, "--date", "composite", "--crop", "64", "--max-steps", "2",
                            "--out", model, *FAST])
    meta = read_meta(model)
    assert meta["input"]["dates"] == "composite" and len(meta["input"]["composite"]["s2"]) == 36
    assert meta["training"]["labels"]["date_rule"].startswith("composite")
    out = tmp_path / "map.tif"
    events = command_ok("predict", ["--model", model, *flanders_inputs(shared_data), "--tile", "64", "--out", out,
                                    "--devices", "cpu"])
    assert any("composite" in e.get("message", "") for e in events if e["event"] == "log")
    st = ChipStore(store)
    seen = (np.asarray(st.array("s2_valid")).any(axis=2) & np.asarray(st.array("s1_valid")).any(axis=2))
    with rasterio.open(out) as src:
        cls = src.read(1)
    assert ((cls != 255) == seen).all()  # a pixel is mapped when each sensor saw it at least once
