"""Reading the model's input from the source scenes, strip by strip, for ``predict`` and ``embed``.

:class:`StripReader` reads full-width strips of the analysis grid straight from the source rasters
(:class:`backend.data.warp.GridReader`, :func:`backend.data.warp.read_stack`) in the model's channels
(:class:`backend.models.inputs.InputSpec`), at the acquisitions :mod:`backend.data.dates` chose: one date, a
composite, or a whole series; raw stored values where the device can standardise them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import rasterio
import torch
from rasterio.features import geometry_mask
from rasterio.windows import Window
from shapely.geometry import box

from backend.data.calendar import composite_periods
from backend.data.dates import composite_of
from backend.data.feature_presets import FEATURES
from backend.data.prepare import Inputs
from backend.data.scenes import Acquisition
from backend.data.warp import GridReader, read_stack
from backend.models.inputs import InputSpec
from backend.predict.tiled import TilePlan


class StripReader:
    """Full-width strips of the grid: the model's channels and validity.

    Single-date models (one acquisition per sensor in ``groups``): the channels in the model's order, valid = inside
    the AOI and every band valid. When every date is one scene (no mosaic) and no Sentinel-1 needs converting to dB
    (``raw``), strips hold the stored values (uint16 for Sentinel-2): all bands of a file come in one GDAL call, and
    :func:`backend.predict.tiled.predict_tiled` standardises them on the device (:meth:`normalization`); else they
    are standardised here, 0 where invalid. Models that read a time series (``series``, e.g. the pixel classifiers):
    for each sensor, every acquisition of ``groups[sensor]`` in order, all bands of a date together
    (``sensor-date-band``), NaN at invalid observations; valid = inside the AOI with at least one valid observation.

    Runs in the read-ahead thread; the GridReader is opened there (:meth:`context`). ``pin``: strips in page-locked
    memory (CUDA), so that their copy to the GPU does not wait for the host."""

    def __init__(self, inputs: Inputs, spec: InputSpec, picks: list[tuple[str, int]],
                 groups: dict[str, list[Acquisition]], plan: TilePlan, mode: str = "single", pin: bool = False,
                 periods: dict[str, tuple[np.ndarray, int]] | None = None) -> None:
        self.inputs, self.spec, self.groups, self.plan, self.mode, self.pin = inputs, spec, groups, plan, mode, pin
        #: a season-calendar model: per sensor, the period of each acquisition and the number of periods; each
        #: period's per-band median of the valid observations is the input (:mod:`backend.data.calendar`)
        self.periods = periods or {}
        series = mode == "series"
        self.grid = inputs.grid
        self.bands = {"s2": inputs.s2_bands, "s1": inputs.s1_bands, FEATURES: inputs.features_bands}
        self.by_sensor: dict[str, tuple[list[str], list[int]]] = {}
        for pos, (s, i) in enumerate(picks):
            names, out = self.by_sensor.setdefault(s, ([], []))
            names.append(self.bands[s][i])
            out.append(pos)
        # S1 in dB, feature rasters decoded, as prepare stores them
        self.dtypes: dict[str, np.dtype] = {"s1": np.dtype(np.float32), FEATURES: np.dtype(np.float32)}
        if "s2" in groups:
            names = self.by_sensor.get("s2", ([], []))[0]
            self.dtypes["s2"] = np.result_type(*[b.dtype for _, scenes in groups["s2"] for sc in scenes
                                                 for b in sc.bands if b.name in names] or [np.float32])
        self.n_channels = (sum(len(names) * (self.periods[s][1] if s in self.periods else len(groups[s]))
                               for s, (names, _) in self.by_sensor.items()) if series else len(spec.channels))
        self.raw = mode == "single" and \
            all(len(groups[s]) == 1 and len(groups[s][0][1]) == 1 for s in self.by_sensor) and \
            all(g[1][0].scale != "linear" for s in self.by_sensor if s == "s1" for g in groups[s])
        self.raw_dtype = np.result_type(*[self.dtypes[s] for s in self.by_sensor]) if self.raw else np.float32
        self.reader: GridReader | None = None

    def normalization(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(mean, std) per channel when strips hold stored values (the device standardises them), else None."""
        return (self.spec.mean.ravel(), self.spec.std.ravel()) if self.raw else None

    def cache_bytes(self) -> int:
        """GDAL block cache for two rows of source blocks of every file read: a strip of ``stride`` rows spans at
        most two, and the next strip starts in the second. With less (GridReader's default is 64 MiB) full-width
        strips of a pixel-interleaved tile re-decode every block once per band: 20x slower on a 10-band S2 tile."""
        files = {scene.band(name).path for s, (names, _) in self.by_sensor.items() for _, scenes in self.groups[s]
                 for scene in scenes for name in names}
        total = 0
        for path in files:
            with rasterio.open(path) as src:
                bh, bw = src.block_shapes[0]
                itemsize = max(np.dtype(dt_).itemsize for dt_ in src.dtypes)
                total += 2 * bh * src.width * src.count * itemsize
        return int(min(max(1.25 * total, 64 * 2**20), 2 * 2**30))

    @contextlib.contextmanager
    def context(self) -> Iterator[GridReader]:
        """Entered in the read-ahead thread: the GDAL cache (unless GDAL_CACHEMAX is set), blocks decoded and warped
        on every core (unless GDAL_NUM_THREADS is set: a full-width strip spans tens of compressed blocks), and the
        GridReader."""
        options: dict[str, Any] = {}
        if "GDAL_CACHEMAX" not in os.environ:
            options["GDAL_CACHEMAX"] = self.cache_bytes()
        if "GDAL_NUM_THREADS" not in os.environ:
            options["GDAL_NUM_THREADS"] = "ALL_CPUS"
        with rasterio.Env(**options):
            self.reader = GridReader(self.grid)
            try:
                yield self.reader
            finally:
                self.reader.close()

    def _empty(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        if self.pin:
            return torch.zeros(shape, dtype=torch.from_numpy(np.empty(0, dtype)).dtype, pin_memory=True).numpy()
        return np.zeros(shape, dtype)

    def __call__(self, r0: int, r1: int) -> tuple[np.ndarray, np.ndarray]:
        """Grid rows [r0, r1) at the plan's padded width (rows and columns past the grid: invalid, and 0, or NaN for
        a series model: no observation, as it wants invalid ones, so that a smoothed map does not take votes
        there)."""
        n, wp = r1 - r0, self.plan.padded_width
        x = self._empty((self.n_channels, n, wp), self.raw_dtype)
        valid = np.zeros((n, wp), bool)
        g0, g1 = max(r0, 0), min(r1, self.grid.height)
        if self.mode == "series":  # only the padding: the read fills the rest
            x[:, :max(g0 - r0, 0)] = np.nan
            x[:, max(g1 - r0, 0):] = np.nan
            x[:, :, self.grid.width:] = np.nan
        if g1 > g0:
            win = Window(0, g0, self.grid.width, g1 - g0)
            if self.raw and self.grid.width == wp:
                valid[g0 - r0:g1 - r0] = self.read_raw(win, x[:, g0 - r0:g1 - r0])
            elif self.raw:
                part = np.empty((self.n_channels, g1 - g0, self.grid.width), self.raw_dtype)
                valid[g0 - r0:g1 - r0, :self.grid.width] = self.read_raw(win, part)
                x[:, g0 - r0:g1 - r0, :self.grid.width] = part
            else:
                x[:, g0 - r0:g1 - r0, :self.grid.width], valid[g0 - r0:g1 - r0, :self.grid.width] = self.read(win)
        return x, valid

    def window(self, row: int, col: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        """A ``size`` x ``size`` window at (row, col), standardised (the part past the grid: invalid; 0, NaN for a
        series model)."""
        x = np.full((self.n_channels, size, size), np.nan if self.mode == "series" else 0.0, np.float32)
        valid = np.zeros((size, size), bool)
        h, w = min(size, self.grid.height - row), min(size, self.grid.width - col)
        if h > 0 and w > 0:
            x[:, :h, :w], valid[:h, :w] = self.read(Window(col, row, w, h))
        return x, valid

    def inside(self, win: Window) -> np.ndarray:
        """Pixels of a window whose centre lies in the AOI polygon (no rasterising when the AOI holds the whole
        window, e.g. a box or a whole scene)."""
        h, w = int(win.height), int(win.width)
        t = self.grid.window_transform(win)  # north-up
        if self.inputs.aoi_geom.contains(box(t.c, t.f + t.e * h, t.c + t.a * w, t.f)):
            return np.ones((h, w), bool)
        return geometry_mask([self.inputs.aoi_geom], out_shape=(h, w), transform=self.grid.window_transform(win),
                             invert=True)

    def read_raw(self, win: Window, out: np.ndarray) -> np.ndarray:
        """Stored values of the model's channels over a window inside the grid into ``out`` (C, h, w); returns the
        validity (inside the AOI, every band valid). For ``raw`` readers only."""
        assert self.reader is not None
        ok = self.inside(win)
        for s, (names, pos) in self.by_sensor.items():
            scene = self.groups[s][0][1][0]
            bands = [scene.band(name) for name in names]
            if pos == list(range(pos[0], pos[0] + len(pos))):
                ok &= self.reader.read_bands(bands, win, out[pos[0]:pos[-1] + 1])
            else:
                part = np.empty((len(pos), *out.shape[1:]), out.dtype)
                ok &= self.reader.read_bands(bands, win, part)
                out[pos] = part
        return ok

    def read(self, win: Window) -> tuple[np.ndarray, np.ndarray]:
        """(C, h, w) standardised model input of a window inside the grid, and its validity (see the class
        docstring)."""
        h, w = int(win.height), int(win.width)
        inside = self.inside(win)
        assert self.reader is not None
        x = np.zeros((self.n_channels, h, w), np.float32)
        if self.mode == "series":
            ok = np.zeros_like(inside)
            offset = 0
            for s, (names, out) in self.by_sensor.items():
                block, v = read_stack(self.reader, self.groups[s], names, win, self.dtypes[s], inside,
                                       to_db=(s == "s1"))
                z = (block.astype(np.float32) - self.spec.mean[out]) / self.spec.std[out]  # (h, w, T, C)
                z[~v.astype(bool)] = np.nan
                if s in self.periods:
                    z = composite_periods(z, *self.periods[s])  # (h, w, P, C)
                size = z.shape[2] * z.shape[3]
                x[offset:offset + size] = np.moveaxis(z.reshape(h, w, size), -1, 0)
                offset += size
                ok |= v.any(axis=2)
            return x, ok & inside
        ok = inside.copy()
        for s, (names, out) in self.by_sensor.items():
            block, v = read_stack(self.reader, self.groups[s], names, win, self.dtypes[s], inside,
                                   to_db=(s == "s1"))
            if self.mode == "composite":
                values, valid = composite_of(block, v)
            else:
                values, valid = block[:, :, 0, :], v[:, :, 0].astype(bool)
            x[out] = np.moveaxis(values, -1, 0)
            ok &= valid
        self.spec.normalize(x, None)
        x[:, ~ok] = 0.0
        return x, ok
