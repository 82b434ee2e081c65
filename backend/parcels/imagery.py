"""The imagery of ``export-dataset``: where a chip's pixels come from and which channels it carries.

A source is a cube chip store (``--data``: memory-mapped slices, no GDAL call) or the source rasters (``--s2``/``--s1``,
read onto the grid through the data layer, like ``prepare``); both read one window of every sensor's dates at a time.
:func:`plan_channels` turns ``--dates`` (all, median, or a list of dates) into the channels of every chip, in file
order; :func:`assemble` cuts a chip's channels out of a window (the per-pixel median of the valid dates for
``median``).
"""

from __future__ import annotations

import argparse
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely
from rasterio.features import geometry_mask
from rasterio.windows import Window

from backend.data.chipstore import ChipStore
from backend.data.grid import Grid
from backend.errors import EoSslError
from backend.events import Events

# -- sources --------------------------------------------------------------------------------------------


@dataclass
class SensorInfo:
    name: str
    bands: list[str]
    dates: list[str | None]
    dtype: np.dtype
    scale: str
    sources: list[dict] = field(default_factory=list)


class StoreSource:
    """A cube chip store: memory-mapped slices, no GDAL call."""

    def __init__(self, path: str, sensors: list[str] | None) -> None:
        self.store = ChipStore(path)
        if self.store.kind != "cube":
            raise EoSslError("wrong_store_kind", f"{path} holds chips, not a cube.",
                             "Give --data a store prepared from rasters (eo-ssl prepare --s2 ...).")
        self.grid: Grid = self.store.grid
        self.aoi = shapely.from_wkt(self.store.manifest["aoi"]["wkt"])
        available = self.store.sensors
        chosen = sensors or available
        missing = [s for s in chosen if s not in available]
        if missing:
            raise EoSslError("sensor_missing", f"{path} has no {', '.join(missing).upper()} data.",
                             f"Pick from {', '.join(available)} with --sensors.")
        self.sensors = []
        for s in chosen:
            m = self.store.manifest["sensors"][s]
            self.sensors.append(SensorInfo(s, list(m["bands"]), list(m["dates"]), np.dtype(m["dtype"]),
                                           m.get("scale", ""), m.get("scenes", [])))
        self.inputs = [str(Path(path).resolve())] + [f for s in self.sensors for sc in s.sources
                                                     for f in sc.get("files", [])]

    def read(self, win: Window) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        sl = (slice(int(win.row_off), int(win.row_off + win.height)),
              slice(int(win.col_off), int(win.col_off + win.width)))
        out = {}
        for s in self.sensors:
            out[s.name] = (np.asarray(self.store.array(s.name)[sl]),
                           np.asarray(self.store.array(f"{s.name}_valid")[sl]).astype(bool))
        return out

    def close(self) -> None:
        """Nothing to release: the store is a memory map, closed with the ChipStore."""


class RasterSource:
    """Source rasters read onto the grid through the data layer (same inputs as ``prepare``)."""

    def __init__(self, args: argparse.Namespace, events: Events, sensors: list[str] | None) -> None:
        from backend.data.prepare import resolve_inputs
        from backend.data.scenes import group_by_date
        from backend.data.warp import GridReader

        inputs = resolve_inputs(args, events)
        self.grid = inputs.grid
        self.aoi = inputs.aoi_geom
        given = inputs.bands()  # the sensors given, in the store's order (s2, s1, features)
        chosen = sensors or list(given)
        missing = [s for s in chosen if s not in given]
        if missing:
            raise EoSslError("sensor_missing", f"--sensors asks for {', '.join(missing)} but no such input was given.",
                             f"Add --{missing[0]} PATH..., or leave {', '.join(missing)} out of --sensors.")
        self.groups = {s: group_by_date(inputs.scenes(s)) for s in chosen}
        self.bands = {s: given[s] for s in chosen}
        self.sensors = []
        for s in chosen:
            scenes = inputs.scenes(s)
            if s == "s2":
                dtype = np.result_type(*[b.dtype for sc in scenes for b in sc.bands if b.name in self.bands[s]])
                scale = "reflectance x 10000" if dtype.kind in "ui" else "as source"
            else:  # S1 in dB, feature rasters decoded by their preset (as prepare stores both)
                dtype, scale = np.dtype(np.float32), "dB" if s == "s1" else "decoded"
            dates = [d.isoformat() if d else None for d, _ in self.groups[s]]
            records = [{"name": sc.name, "date": sc.date.isoformat() if sc.date else None,
                        "files": [str(f) for f in sc.files]} for sc in scenes]
            self.sensors.append(SensorInfo(s, list(self.bands[s]), dates, np.dtype(dtype), scale, records))
        self.inputs = [f for s in self.sensors for r in s.sources for f in r["files"]]
        self.reader = GridReader(self.grid)
        self.reader.__enter__()

    def read(self, win: Window) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        from backend.data.warp import read_stack

        inside = geometry_mask([self.aoi], out_shape=(int(win.height), int(win.width)),
                               transform=self.grid.window_transform(win), invert=True)
        out = {}
        for s in self.sensors:
            out[s.name] = read_stack(self.reader, self.groups[s.name], s.bands, win, s.dtype, inside,
                                      to_db=s.name == "s1")
            out[s.name] = (out[s.name][0], out[s.name][1].astype(bool))
        return out

    def close(self) -> None:
        self.reader.__exit__(None, None, None)


# -- channels ---------------------------------------------------------------------------------------------------


@dataclass
class Channel:
    sensor: str
    band: str
    date: str | None  # ISO date, or "median" description
    t: list[int]  # date indices feeding this channel (one, or all for a median)
    name: str = ""


def plan_channels(sensors: list[SensorInfo], dates: str) -> tuple[list[Channel], dict[str, list[int]]]:
    """Channels in file order (sensor, then date, then band) and the date indices used per sensor."""
    channels: list[Channel] = []
    used: dict[str, list[int]] = {}
    spec = dates.strip().lower()
    for s in sensors:
        n_t = len(s.dates)
        if spec in ("all", "median"):
            picks = list(range(n_t))
        else:
            picks = []
            ords = [dt.date.fromisoformat(d).toordinal() if d else None for d in s.dates]
            for text in dates.split(","):
                try:
                    target = dt.date.fromisoformat(text.strip()).toordinal()
                except ValueError as exc:
                    raise EoSslError("bad_dates", f"--dates {dates!r}: {text.strip()!r} is not a date.",
                                     "Use all, median, or YYYY-MM-DD,YYYY-MM-DD.") from exc
                known = [(abs(o - target), i) for i, o in enumerate(ords) if o is not None]
                if not known:
                    raise EoSslError("bad_dates", f"The {s.name.upper()} scenes have no dates to match --dates.",
                                     "Use --dates all or median.")
                i = min(known)[1]
                if i not in picks:
                    picks.append(i)
        used[s.name] = picks
        if spec == "median":
            label = f"median of {n_t} date(s)"
            channels += [Channel(s.name, b, label, picks) for b in s.bands]
        else:
            channels += [Channel(s.name, b, s.dates[t], [t]) for t in picks for b in s.bands]
    per_sensor_dates = {s.name: len(used[s.name]) if spec != "median" else 1 for s in sensors}
    for ch in channels:
        multi = per_sensor_dates[ch.sensor] > 1
        ch.name = f"{ch.band}_{(ch.date or 'undated').replace('-', '')}" if multi else ch.band
    names = [c.name for c in channels]
    if len(set(names)) != len(names):  # e.g. the same band name from two sensors: prefix the sensor
        for ch in channels:
            ch.name = f"{ch.sensor}_{ch.name}"
    return channels, used


def assemble(channels: list[Channel], data: dict[str, tuple[np.ndarray, np.ndarray]], sensors: list[SensorInfo],
             sl: tuple[slice, slice], dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """(C, h, w) chip values (nodata filled) and (C, h, w) validity from a group's (h, w, T, C) arrays."""
    band_idx = {s.name: {b: i for i, b in enumerate(s.bands)} for s in sensors}
    h = sl[0].stop - sl[0].start
    w = sl[1].stop - sl[1].start
    x = np.zeros((len(channels), h, w), np.float64)
    v = np.zeros((len(channels), h, w), bool)
    for k, ch in enumerate(channels):
        arr, valid = data[ch.sensor]
        b = band_idx[ch.sensor][ch.band]
        if len(ch.t) == 1:
            t = ch.t[0]
            x[k] = arr[sl[0], sl[1], t, b]
            v[k] = valid[sl[0], sl[1], t]
        else:  # per-pixel median over the valid dates
            stack = arr[sl[0], sl[1]][:, :, ch.t, b].astype(np.float64)
            ok = valid[sl[0], sl[1]][:, :, ch.t]
            stack[~ok] = np.nan
            any_ok = ok.any(axis=2)
            med = np.zeros((h, w))
            if any_ok.any():
                med[any_ok] = np.nanmedian(stack[any_ok], axis=1)
            x[k], v[k] = med, any_ok
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        x = np.clip(np.rint(x), info.min, info.max)
        x[~v] = 0
    else:
        x[~v] = np.nan
    return x.astype(dtype), v
