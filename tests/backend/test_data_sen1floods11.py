"""Sen1Floods11: S1 (dB) + S2 (13-band L1C) chips in EPSG:4326, prepared onto a UTM 10 m grid.

The alignment of S1 and S2 on the grid is tested three ways: each sensor equals a direct GDAL reprojection of its
own file onto the grid; the physics agree (open water is dark in VV and bright in NDWI, so the two are strongly
anti-correlated, most strongly without a shift); and the hand-labelled water mask, reprojected onto the grid,
agrees with both.
"""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import shapely
from pyproj import Transformer
from rasterio.vrt import WarpedVRT
from rasterio.warp import Resampling, reproject

from backend.data.chipstore import ChipStore
from tests.backend.data_helpers import L1C_ORDER, prepared_store


@pytest.fixture(scope="module")
def sample(shared_data):
    return shared_data / "sen1floods11" / "sample"


@pytest.fixture(scope="module")
def store(sample, tmp_path_factory) -> ChipStore:
    return prepared_store(tmp_path_factory, "sen1floods11", ["--s2", sample / "S2", "--s1", sample / "S1"])


def _direct(path, band: int, grid, dtype, nodata, resampling=Resampling.bilinear) -> np.ndarray:
    """``band`` of ``path`` reprojected onto the whole grid in one call of rasterio.warp.reproject."""
    out = np.full(grid.shape, nodata, dtype)
    with rasterio.open(path) as src:
        reproject(rasterio.band(src, band), out, src_transform=src.transform, src_crs=src.crs,
                  dst_transform=grid.transform, dst_crs=grid.rasterio_crs(), resampling=resampling,
                  src_nodata=src.nodata, dst_nodata=nodata)
    return out


def _direct_vrt(path, band: int, grid) -> np.ndarray:
    """``band`` of ``path`` read whole through a WarpedVRT onto the grid (GDAL's defaults: bilinear, 1/8 px
    transformer tolerance)."""
    with rasterio.open(path) as src, WarpedVRT(src, crs=grid.rasterio_crs(), transform=grid.transform,
                                               width=grid.width, height=grid.height, resampling=Resampling.bilinear,
                                               src_nodata=src.nodata, nodata=src.nodata) as vrt:
        return vrt.read(band)


def test_grid_is_utm_30n_at_10_m(store, sample):
    g = store.grid
    assert g.crs.to_epsg() == 32630  # longitude -0.78: UTM zone 30 north
    assert g.resolution == 10.0 and g.transform.e == -10.0
    assert g.transform.c % 10 == 0 and g.transform.f % 10 == 0
    with rasterio.open(next((sample / "S2").glob("*.tif"))) as src:
        assert src.crs.to_epsg() == 4326
        to_utm = Transformer.from_crs(4326, 32630, always_xy=True)
        footprint = shapely.transform(shapely.segmentize(shapely.box(*src.bounds), 1e-4), to_utm.transform,
                                      interleaved=False)
    minx, miny, maxx, maxy = footprint.bounds
    gx0, gy0, gx1, gy1 = g.bounds
    assert gx0 <= minx < gx0 + 10 and gx1 - 10 < maxx <= gx1
    assert gy0 <= miny < gy0 + 10 and gy1 - 10 < maxy <= gy1
    # the chip is a rotated square in UTM: its corners fall outside it and are not valid
    aoi = store.array("aoi").astype(bool)
    assert 0.9 < aoi.mean() < 0.99
    assert store.bands("s2") == L1C_ORDER and store.bands("s1") == ["VV", "VH"]
    assert store.manifest["sensors"]["s1"]["scale"] == "dB"
    assert [s["scale"] for s in store.manifest["sensors"]["s1"]["scenes"]] == ["db"]


def test_each_sensor_equals_a_direct_reprojection(store, sample):
    g = store.grid
    s2, s1 = store.array("s2"), store.array("s1")
    v2, v1 = store.array("s2_valid")[:, :, 0].astype(bool), store.array("s1_valid")[:, :, 0].astype(bool)
    s2_file, s1_file = next((sample / "S2").glob("*.tif")), next((sample / "S1").glob("*.tif"))
    for band in ("B02", "B08", "B11"):
        got = s2[:, :, 0, L1C_ORDER.index(band)].astype(np.int64)
        whole = _direct_vrt(s2_file, L1C_ORDER.index(band) + 1, g).astype(np.int64)
        diff = np.abs(got - whole)[v2]
        assert diff.max() <= 1 and (diff == 0).mean() > 0.99, band
        # rasterio.warp.reproject estimates GDAL's (scale-aware) bilinear kernel over other chunks and without the
        # 1/8 px transformer approximation: not equal pixel for pixel on this noisy band, but the same image
        direct = _direct(s2_file, L1C_ORDER.index(band) + 1, g, np.int16, 0).astype(np.int64)
        assert np.median(np.abs(got - direct)[v2]) <= 0.02 * np.median(got[v2])
        assert np.corrcoef(got[v2], direct[v2])[0, 1] > 0.98, band
    for i, pol in enumerate(("VV", "VH")):
        whole = _direct_vrt(s1_file, i + 1, g)
        assert np.isfinite(whole[v1]).all()
        np.testing.assert_allclose(s1[:, :, 0, i][v1], whole[v1], atol=1e-4, err_msg=pol)
        direct = _direct(s1_file, i + 1, g, np.float32, np.nan)
        assert np.corrcoef(s1[:, :, 0, i][v1], direct[v1])[0, 1] > 0.98, pol
    assert (v1 == v2).mean() > 0.999  # same footprint, same grid


def _water_label(sample, grid) -> np.ndarray:
    """LabelHand (-1 nodata, 0 land, 1 water) on the grid, nearest neighbour."""
    return _direct(next((sample / "Labels").glob("*.tif")), 1, grid, np.int16, -1, Resampling.nearest)


def test_s1_and_s2_are_aligned(store, sample):
    b = store.bands("s2")
    s2 = store.array("s2")[:, :, 0].astype(np.float64)
    vv = store.array("s1")[:, :, 0, 0]
    ok = store.array("s2_valid")[:, :, 0].astype(bool) & store.array("s1_valid")[:, :, 0].astype(bool)
    green, nir = s2[..., b.index("B03")], s2[..., b.index("B08")]
    ndwi = (green - nir) / np.maximum(green + nir, 1)

    def corr(dy: int, dx: int) -> float:
        shifted = np.roll(vv, (dy, dx), axis=(0, 1))
        both = ok & np.roll(ok, (dy, dx), axis=(0, 1))
        return float(np.corrcoef(ndwi[both], shifted[both])[0, 1])

    aligned = corr(0, 0)
    assert aligned < -0.5  # water: NDWI up, VV backscatter down
    ring = [corr(dy, dx) for dy in range(-3, 4) for dx in range(-3, 4) if max(abs(dy), abs(dx)) == 3]
    assert aligned < min(ring) - 0.03  # a 3-pixel shift of S1 against S2 loses the match

    label = _water_label(sample, store.grid)
    known = ok & (label >= 0)
    water, land = known & (label == 1), known & (label == 0)
    assert water.sum() > 10_000 and land.sum() > 10_000
    # the same pixels are water for S1 (low VV), for S2 (low NIR, positive NDWI) and for the hand labels
    assert np.median(vv[water]) < np.median(vv[land]) - 5
    assert np.median(nir[water]) < 0.5 * np.median(nir[land])
    assert ((vv < -15) == (label == 1))[known].mean() > 0.8
    assert ((ndwi > 0) == (label == 1))[known].mean() > 0.85
    dark_and_wet = (vv < -15) & (ndwi > 0) & known
    assert (label[dark_and_wet] == 1).mean() > 0.9
