"""Reading source bands onto the analysis grid, one window at a time.

A band whose file is on the grid (same CRS, resolution and pixel alignment) is read with a plain window:
the values are copied. Anything else goes through a ``WarpedVRT`` onto the grid: GDAL reprojects and
resamples only the requested window, so memory is bounded by the window, never by the raster.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from backend.data.feature_presets import FEATURES, read_features
from backend.data.grid import Grid
from backend.data.scenes import Acquisition, BandFile


def default_nodata(band: BandFile) -> float:
    """Declared nodata, else 0 for integer data (the Sentinel-2 'no data' value), else NaN."""
    if band.nodata is not None:
        return band.nodata
    return float("nan") if np.dtype(band.dtype).kind == "f" else 0


#: GDAL's block cache while a GridReader is open (used as a context manager). GDAL's default is 5 % of RAM, which
#: a windowed pass over a large raster fills block by block: memory would grow with the raster, not the window.
#: A ``GDAL_CACHEMAX`` set in the environment wins.
GDAL_CACHE_BYTES = 64 * 2**20


class GridReader:
    """Reads windows of source bands onto a :class:`Grid`, keeping a few datasets open between windows."""

    def __init__(self, grid: Grid, resampling: Resampling = Resampling.bilinear, max_open: int = 64) -> None:
        self.grid = grid
        self.resampling = resampling
        self.max_open = max_open
        self._open: OrderedDict[Path, tuple] = OrderedDict()
        self._dst_crs = grid.rasterio_crs()
        self._env: rasterio.Env | None = None

    def _dataset(self, band: BandFile, resampling: Resampling | None = None) -> tuple:
        """(reader, aligned offset or None) for a file; a WarpedVRT when the file is not on the grid (also a file
        stored bottom-up, with a positive y resolution: GDAL's warper reads it the right way up). ``resampling``:
        other than the reader's (quantised feature rasters are read nearest-neighbour)."""
        resampling = resampling if resampling is not None else self.resampling
        key = (band.path, resampling)
        entry = self._open.get(key)
        if entry is not None:
            self._open.move_to_end(key)
            return entry
        src = rasterio.open(band.path)
        offset = self._aligned_offset(src)
        if offset is not None:
            entry = (src, None, offset)
        else:
            nodata = default_nodata(band)
            vrt = WarpedVRT(src, crs=self._dst_crs, transform=self.grid.transform, width=self.grid.width,
                            height=self.grid.height, resampling=resampling, src_nodata=nodata, nodata=nodata)
            entry = (src, vrt, None)
        self._open[key] = entry
        while len(self._open) > self.max_open:
            _, (old_src, old_vrt, _) = self._open.popitem(last=False)
            if old_vrt is not None:
                old_vrt.close()
            old_src.close()
        return entry

    def _aligned_offset(self, src: rasterio.DatasetReader) -> tuple[int, int] | None:
        """(row, col) of the grid origin in the file when the file's pixels are the grid's pixels."""
        from pyproj import CRS

        if src.crs is None or CRS.from_user_input(src.crs.to_wkt()) != self.grid.crs:
            return None
        st, gt = src.transform, self.grid.transform
        if not (math.isclose(st.a, gt.a, rel_tol=1e-9) and math.isclose(st.e, gt.e, rel_tol=1e-9)
                and st.b == 0 and st.d == 0):
            return None
        col = (gt.c - st.c) / st.a
        row = (gt.f - st.f) / st.e
        if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
            return None
        return int(round(row)), int(round(col))

    def read(self, band: BandFile, window: Window, resampling: Resampling | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
        """(values in the file's dtype, valid mask) of ``band`` over ``window`` of the grid."""
        src, vrt, offset = self._dataset(band, resampling)
        nodata = default_nodata(band)
        if vrt is not None:
            data = vrt.read(band.index, window=window)
        else:
            data = self._read_aligned(src, band, window, offset, nodata)
        valid = np.isfinite(data) if data.dtype.kind == "f" else np.ones(data.shape, bool)
        if not (isinstance(nodata, float) and math.isnan(nodata)):
            valid &= data != nodata
        return data, valid

    def read_many(self, bands: list[BandFile], window: Window, resampling: Resampling | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
        """(C, h, w) values and (C, h, w) validity of ``bands`` over ``window``, the bands of one file in one GDAL
        call (warped too: a 64-band embedding read band by band through a WarpedVRT decodes every block 64 times)."""
        h, w = int(window.height), int(window.width)
        data = np.empty((len(bands), h, w), np.result_type(*[b.dtype for b in bands]))
        valid = np.empty((len(bands), h, w), bool)
        by_file: dict[Path, list[int]] = {}
        for i, band in enumerate(bands):
            by_file.setdefault(band.path, []).append(i)
        for positions in by_file.values():
            first = bands[positions[0]]
            src, vrt, offset = self._dataset(first, resampling)
            indexes = [bands[i].index for i in positions]
            file_window = None if vrt is not None else Window(window.col_off + offset[1], window.row_off + offset[0],
                                                              w, h)
            if vrt is not None:
                part = vrt.read(indexes, window=window)
            elif self._inside(src, file_window):
                part = src.read(indexes, window=file_window)
            else:
                part = np.stack([self._read_aligned(src, bands[i], window, offset, default_nodata(bands[i]))
                                 for i in positions])
            for j, i in enumerate(positions):
                nodata = default_nodata(bands[i])
                data[i] = part[j]
                ok = np.isfinite(part[j]) if part.dtype.kind == "f" else np.ones((h, w), bool)
                if not (isinstance(nodata, float) and math.isnan(nodata)):
                    ok &= part[j] != nodata
                valid[i] = ok
        return data, valid

    def read_bands(self, bands: list[BandFile], window: Window, out: np.ndarray) -> np.ndarray:
        """Read ``bands`` over ``window`` into ``out`` (len(bands), h, w) (any dtype: GDAL converts) and return where
        every band is valid (h, w). Bands of one file are read in one call: a pixel-interleaved file's blocks are
        decoded once for all of them, and the values come out band-sequential, as the models read them."""
        h, w = int(window.height), int(window.width)
        ok = np.ones((h, w), bool)
        by_file: dict[Path, list[int]] = {}
        for i, band in enumerate(bands):
            by_file.setdefault(band.path, []).append(i)
        for positions in by_file.values():
            first = bands[positions[0]]
            src, vrt, offset = self._dataset(first)
            indexes = [bands[i].index for i in positions]
            nodata = default_nodata(first)
            file_window = None if vrt is not None else Window(window.col_off + offset[1], window.row_off + offset[0],
                                                              w, h)
            if file_window is None or not self._inside(src, file_window):
                for i in positions:  # warped, or partly outside the file: the general path, band by band
                    out[i], v = self.read(bands[i], window)
                    ok &= v
                continue
            contiguous = positions == list(range(positions[0], positions[0] + len(positions)))
            target = out[positions[0]:positions[-1] + 1] if contiguous else np.empty((len(positions), h, w),
                                                                                      first.dtype)
            src.read(indexes, window=file_window, out=target)
            if not contiguous:
                out[positions] = target
            if isinstance(nodata, float) and math.isnan(nodata):
                ok &= ~np.isnan(target).any(axis=0)
            elif np.dtype(first.dtype).kind == "u" and nodata == 0:
                ok &= target.min(axis=0) != 0  # (one pass instead of a comparison per band)
            else:
                ok &= (target != nodata).all(axis=0)
            if np.dtype(first.dtype).kind == "f":
                ok &= np.isfinite(target).all(axis=0)
        return ok

    @staticmethod
    def _inside(src: rasterio.DatasetReader, window: Window) -> bool:
        return (window.col_off >= 0 and window.row_off >= 0 and window.col_off + window.width <= src.width
                and window.row_off + window.height <= src.height)

    @staticmethod
    def _read_aligned(src: rasterio.DatasetReader, band: BandFile, window: Window, offset: tuple[int, int],
                      nodata: float) -> np.ndarray:
        """Plain windowed read; the part of the window outside the file is nodata."""
        h, w = int(window.height), int(window.width)
        r0, c0 = int(window.row_off) + offset[0], int(window.col_off) + offset[1]
        out = np.full((h, w), nodata, dtype=band.dtype)
        rr0, cc0 = max(r0, 0), max(c0, 0)
        rr1, cc1 = min(r0 + h, src.height), min(c0 + w, src.width)
        if rr1 > rr0 and cc1 > cc0:
            part = src.read(band.index, window=Window(cc0, rr0, cc1 - cc0, rr1 - rr0))
            out[rr0 - r0:rr1 - r0, cc0 - c0:cc1 - c0] = part
        return out

    def close(self) -> None:
        for src, vrt, _ in self._open.values():
            if vrt is not None:
                vrt.close()
            src.close()
        self._open.clear()

    def __enter__(self) -> GridReader:
        if "GDAL_CACHEMAX" not in os.environ:
            self._env = rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES)
            self._env.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
        if self._env is not None:
            self._env.__exit__(*exc)
            self._env = None


def read_stack(reader: GridReader, groups: list[Acquisition], bands: list[str], win: Window,
               dtype: np.dtype, inside: np.ndarray, to_db: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``bands`` of each acquisition in ``groups`` over a window of the reader's grid: (h, w, T, C) values and
    (h, w, T) validity (every band valid and ``inside``; 0 where invalid). The scenes of a day are mosaicked (the first
    valid value wins); ``to_db``: linear Sentinel-1 backscatter is converted to dB, as ``prepare`` stores it. Feature
    rasters (sensor ``features``) are decoded to float32 by their preset (:mod:`backend.data.feature_presets`)."""
    hh, ww = int(win.height), int(win.width)
    block = np.zeros((hh, ww, len(groups), len(bands)), dtype)
    valid = np.zeros((hh, ww, len(groups)), np.uint8)
    for t, (_, scenes) in enumerate(groups):
        all_ok = np.zeros((hh, ww), bool)
        for scene in scenes:  # mosaic: fill what earlier scenes of the day left empty
            ok = np.ones((hh, ww), bool)
            values = []
            if scene.sensor == FEATURES:  # every band at once, decoded by its preset (AlphaEarth, TESSERA, ...)
                decoded, ok = read_features(reader, scene, bands, win)
                values = list(decoded)
            for name in bands if scene.sensor != FEATURES else ():
                data, v = reader.read(scene.band(name), win)
                if to_db and scene.scale == "linear":
                    data = 10.0 * np.log10(np.where(v & (data > 0), data, np.nan))
                    v &= np.isfinite(data)
                values.append(data)
                ok &= v
            take = ok & ~all_ok
            for c, data in enumerate(values):
                block[..., t, c][take] = data[take]
            all_ok |= ok
        valid[..., t] = all_ok & inside
    block[valid == 0] = 0
    return block, valid
