"""BigEarthNet-MM: S2 L2A as one file per band (12 bands at 10/20/60 m), S1 as one file per polarisation.

Each of the six patch pairs is a different place: the whole folder at once is refused (``scenes_disjoint``), one
pair prepares by its folders or by an AOI over the whole folders.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from rasterio.warp import Resampling, reproject

from backend.data.bands import S2_L2A_ORDER
from backend.data.chipstore import ChipStore
from tests.backend.data_helpers import logs, prepare_ok, prepared_store, run_prepare

PATCH = "87_48"  # S2A_MSIL2A_20170613T101031_87_48 + S1A_IW_GRDH_1SDV_20170613T165043_33UUP_87_48


@pytest.fixture(scope="module")
def ben(shared_data):
    return shared_data / "bigearthnet_mm"


@pytest.fixture(scope="module")
def pair(ben):
    s2 = next((ben / "BigEarthNet-S2-Example").glob(f"*_{PATCH}"))
    s1 = next((ben / "BigEarthNet-S1-Example").glob(f"*_{PATCH}"))
    return s2, s1


@pytest.fixture(scope="module")
def store(pair, tmp_path_factory) -> ChipStore:
    return prepared_store(tmp_path_factory, "ben", ["--s2", pair[0], "--s1", pair[1]])


def test_whole_folder_is_refused_as_disjoint(ben, tmp_path):
    out = tmp_path / "all"
    rc, events = run_prepare(["--s2", ben / "BigEarthNet-S2-Example", "--s1", ben / "BigEarthNet-S1-Example",
                              "--out", out])
    assert rc == 2
    error = next(e for e in events if e["event"] == "error")
    assert error["code"] == "scenes_disjoint"
    assert "--aoi" in error["hint"]
    assert not out.exists() and not list(tmp_path.glob("*.tmp-*"))


def test_one_pair_by_folder(store, pair):
    s2_dir, s1_dir = pair
    assert store.bands("s2") == list(S2_L2A_ORDER)  # 12 bands: L2A has no B10
    assert store.bands("s1") == ["VV", "VH"]
    assert store.dates("s2") == ["2017-06-13"] and store.dates("s1") == ["2017-06-13"]
    g = store.grid
    assert (g.width, g.height) == (120, 120) and g.crs.to_epsg() == 32633
    meta = json.loads(next(s2_dir.glob("*_labels_metadata.json")).read_text())["coordinates"]
    assert g.bounds == (meta["ulx"], meta["lry"], meta["lrx"], meta["uly"])
    assert store.array("s2_valid").all() and store.array("s1_valid").all()

    s2, s1 = store.array("s2"), store.array("s1")
    for band in ("B02", "B03", "B04", "B08"):  # 10 m bands: copied
        with rasterio.open(next(s2_dir.glob(f"*_{band}.tif"))) as src:
            np.testing.assert_array_equal(s2[:, :, 0, S2_L2A_ORDER.index(band)], src.read(1))
    for i, pol in enumerate(("VV", "VH")):  # S1 on the same 10 m grid: copied, already dB
        with rasterio.open(next(s1_dir.glob(f"*_{pol}.tif"))) as src:
            np.testing.assert_array_equal(s1[:, :, 0, i], src.read(1))
    assert store.manifest["sensors"]["s1"]["scenes"][0]["scale"] == "db"


@pytest.mark.parametrize("band", ["B01", "B09", "B05", "B12"])
def test_20m_and_60m_bands_are_upsampled_bilinearly(store, pair, band):
    with rasterio.open(next(pair[0].glob(f"*_{band}.tif"))) as src:
        factor = int(src.res[0] // 10)
        assert (src.width, src.height) == (120 // factor, 120 // factor)  # B01: 20 x 20 px at 60 m
        g = store.grid
        direct = np.zeros(g.shape, np.uint16)
        reproject(rasterio.band(src, 1), direct, src_transform=src.transform, src_crs=src.crs,
                  dst_transform=g.transform, dst_crs=g.rasterio_crs(), resampling=Resampling.bilinear,
                  src_nodata=0, dst_nodata=0)
        coarse = src.read(1)
    got = store.array("s2")[:, :, 0, S2_L2A_ORDER.index(band)].astype(np.int64)
    assert got.shape == (120, 120)
    assert np.abs(got - direct).max() <= 1
    # smooth, not a block copy: most factor x factor blocks hold more than one value
    blocks = got.reshape(120 // factor, factor, 120 // factor, factor).transpose(0, 2, 1, 3).reshape(-1, factor**2)
    assert (blocks.max(axis=1) > blocks.min(axis=1)).mean() > 0.8
    # and the block means follow the coarse pixels
    assert np.corrcoef(blocks.mean(axis=1), coarse.ravel())[0, 1] > 0.9


def test_one_pair_by_aoi_over_the_whole_folders(ben, pair, store, tmp_path):
    out = tmp_path / "by_aoi"
    events = prepare_ok(["--s2", ben / "BigEarthNet-S2-Example", "--s1", ben / "BigEarthNet-S1-Example",
                         "--bbox", "404400,5341200,405600,5342400", "--bbox-crs", "EPSG:32633", "--out", out])
    assert "left out 5 scene(s) that do not overlap the AOI" in logs(events)
    st = ChipStore(out)
    assert st.dates("s2") == ["2017-06-13"] and st.dates("s1") == ["2017-06-13"]
    assert st.array("s2_valid").all()
    np.testing.assert_array_equal(st.array("s2"), store.array("s2"))
    np.testing.assert_array_equal(st.array("s1"), store.array("s1"))
