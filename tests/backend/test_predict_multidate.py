"""``eo-ssl predict`` from dated Sentinel-2 + Sentinel-1 series (Flanders WorldCereal patch: 36 S2 dates with
clouds masked as nodata, 40 S1 dates): a single-date model reads the S2 date with the most valid pixels and the S1
date nearest to it, the same acquisition ``finetune`` picks from the prepared cube, and the map is nodata exactly
where that acquisition is."""

from __future__ import annotations

import json

import numpy as np
import rasterio

from backend.data.chipstore import ChipStore
from backend.data.dates import choose_date
from tests.backend.data_helpers import prepare_ok
from tests.backend.model_helpers import FAST, command_ok, read_meta


def test_series_prediction_reads_the_best_date(shared_data, tmp_path):
    fl = shared_data / "worldcereal_flanders_2018"
    store = tmp_path / "store"
    prepare_ok(["--s2", fl / "s2", "--s1", fl / "s1", "--parcels", fl / "parcels.gpkg", "--class-field", "ct_name",
                "--out", store])
    model = tmp_path / "model"
    command_ok("finetune", ["--data", store, "--crop", "64", "--max-steps", "2", "--out", model, *FAST])
    meta = read_meta(model)
    assert [s for s, _ in meta["input"]["channels"]].count("s1") == 2  # S2 bands + VV, VH
    st = ChipStore(store)
    choice = choose_date(st, ["s2", "s1"])
    assert meta["input"]["date"] == choice.dates
    events = command_ok("predict", ["--model", model, "--s2", fl / "s2", "--s1", fl / "s1", "--tile", "64",
                                    "--out", tmp_path / "map.tif", "--devices", "cpu"])
    log = "\n".join(e["message"] for e in events if e["event"] == "log")
    assert f"S2 {choice.dates['s2']}" in log and f"S1 {choice.dates['s1']}" in log and "most valid" in log
    with rasterio.open(tmp_path / "map.tif") as src:
        cls = src.read(1)
        assert src.transform == st.grid.transform and json.loads(src.tags()["EO_SSL_PREDICT"])["date"] == {
            "s2": choice.dates["s2"], "s1": choice.dates["s1"]}
    valid = (st.array("s2_valid")[:, :, choice.index["s2"]] & st.array("s1_valid")[:, :, choice.index["s1"]]) > 0
    assert ((cls != 255) == valid).all()
    other = int(np.argmin(st.array("s2_valid").sum(axis=(0, 1))))  # the cloudiest date, asked for by name
    events = command_ok("predict", ["--model", model, "--s2", fl / "s2", "--s1", fl / "s1", "--tile", "64",
                                    "--date", st.dates("s2")[other], "--out", tmp_path / "cloudy.tif",
                                    "--devices", "cpu"])
    with rasterio.open(tmp_path / "cloudy.tif") as src:
        assert (src.read(1) != 255).sum() == 0 or (src.read(1) != 255).mean() < valid.mean()
