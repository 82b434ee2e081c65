"""Scenes: what the user pointed at, resolved into acquisitions with named bands and dates.

A :class:`Scene` is one acquisition of one sensor: a date (or ``None`` for a single undated scene) and
its bands, each a :class:`BandFile` (file + 1-based band index + canonical name). Inputs may be one
multi-band file, one file per band (SAFE-like ``*_B02.jp2``, BigEarthNet-like ``*_B8A.tif``, ``*_VV.tif``),
folders holding any of these, or lists of dated files (time series).

Band names come from, in order: names given by the user, band descriptions, ``BAND_NAME`` band tags,
per-band file names. Dates come from ``ACQUISITION_DATE``-like tags, then from the first ``YYYYMMDD``
in the file name (or its folder). What cannot be known is an error that says how to give it.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.errors import RasterioIOError

from backend.data.bands import FILE_BAND, S1_BANDS, S2_BANDS, band_token_in_filename, canonical
from backend.errors import EoSslError

RASTER_SUFFIXES = {".tif", ".tiff", ".jp2", ".vrt", ".img"}
_DATE_TAGS = ("ACQUISITION_DATE", "DATE_ACQUIRED", "SENSING_TIME", "PRODUCT_START_TIME", "TIFFTAG_DATETIME")
_DATE_RE = re.compile(r"(?<!\d)((?:19|20)\d{2})[-_]?(0[1-9]|1[0-2])[-_]?(0[1-9]|[12]\d|3[01])(?!\d)")
SENSOR_LABEL = {"s2": "Sentinel-2", "s1": "Sentinel-1", "features": "Feature raster"}
BAND_OPTION = {"s2": "--s2-bands", "s1": "--s1-bands", "features": "--features-preset"}
INPUT_OPTION = {"s2": "--s2", "s1": "--s1", "features": "--features"}


@dataclass(frozen=True)
class BandFile:
    """One band of one file: ``index`` is 1-based as in GDAL."""

    path: Path
    index: int
    name: str
    nodata: float | None
    dtype: str


@dataclass
class Scene:
    """One acquisition of one sensor, possibly spread over several files (one per band)."""

    sensor: str
    date: dt.date | None
    bands: list[BandFile]
    crs: CRS
    bounds: tuple[float, float, float, float]
    resolution: float
    #: Sentinel-1 only: ``"db"`` or ``"linear"`` (converted to dB on read).
    scale: str = "db"
    name: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def band_names(self) -> list[str]:
        return [b.name for b in self.bands]

    def band(self, name: str) -> BandFile:
        for b in self.bands:
            if b.name == name:
                return b
        raise KeyError(name)

    @property
    def files(self) -> list[Path]:
        return sorted({b.path for b in self.bands})


def parse_date(text: str) -> dt.date | None:
    """The first plausible ``YYYYMMDD`` / ``YYYY-MM-DD`` / ``YYYY:MM:DD`` date in ``text``."""
    for m in _DATE_RE.finditer(text.replace(":", "-")):
        try:
            return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            continue
    return None


def _date_of(path: Path, tags: dict[str, str]) -> dt.date | None:
    for key in _DATE_TAGS:
        if key in tags and (d := parse_date(tags[key])):
            return d
    return parse_date(path.stem) or parse_date(path.parent.name)


def expand_paths(paths: list[str | Path], sensor: str) -> list[Path]:
    """Files named, plus raster files found (recursively) in folders named; in a stable order."""
    out: list[Path] = []
    for p in map(Path, paths):
        if not p.exists():
            raise EoSslError("input_not_found", f"{SENSOR_LABEL[sensor]} input {p} does not exist.",
                             "Check the path; quote paths with spaces.")
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.suffix.lower() in RASTER_SUFFIXES and f.is_file())
            if not found:
                raise EoSslError("no_rasters", f"Folder {p} holds no raster files (.tif, .jp2, .vrt).",
                                 f"Point {INPUT_OPTION[sensor]} at the image files or their folder.")
            out.extend(found)
        else:
            out.append(p)
    seen: set[Path] = set()
    return [p for p in out if not (p.resolve() in seen or seen.add(p.resolve()))]


class _GdalIOWarnings(logging.Handler):
    """Collects GDAL's I/O warnings, which rasterio logs (GDAL carries on after them, e.g. dropping the band
    descriptions of a file cut short after its pixels)."""

    PATTERNS = ("IO error", "Read error", "Failed to read", "truncated", "Cannot read")

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if any(p.lower() in message.lower() for p in self.PATTERNS):
            self.messages.append(message)


def _open(path: Path) -> rasterio.DatasetReader:
    handler = _GdalIOWarnings()
    logger = logging.getLogger("rasterio._env")
    logger.addHandler(handler)
    try:
        src = rasterio.open(path)
    except RasterioIOError as exc:
        raise EoSslError("corrupt_file", f"Cannot read {path}: {exc}",
                         "The file is corrupt, truncated or not a raster; re-download or re-export it.") from exc
    finally:
        logger.removeHandler(handler)
    if handler.messages:
        src.close()
        raise EoSslError("corrupt_file", f"Cannot read all of {path}: {handler.messages[0]}",
                         "The file is corrupt or truncated; re-download or re-export it.")
    return src


def _check_readable(src: rasterio.DatasetReader, path: Path) -> None:
    """Read the last block of the last band: truncated files fail here rather than mid-way."""
    try:
        h, w = src.height, src.width
        bh, bw = src.block_shapes[-1]
        window = rasterio.windows.Window(max(0, w - bw), max(0, h - bh), min(bw, w), min(bh, h))
        src.read(src.count, window=window)
    except Exception as exc:  # noqa: BLE001 - GDAL raises various errors for damaged files
        raise EoSslError("corrupt_file", f"Cannot read the pixels of {path}: {exc}",
                         "The file is corrupt or truncated; re-download or re-export it.") from exc


def _names_from_file(src: rasterio.DatasetReader, sensor: str) -> list[str] | None:
    desc = [canonical(d, sensor) if d else None for d in src.descriptions]
    if all(desc):
        return desc  # type: ignore[return-value]
    tags = [src.tags(i).get("BAND_NAME") or src.tags(i).get("NAME") for i in range(1, src.count + 1)]
    tagged = [canonical(t, sensor) if t else None for t in tags]
    if all(tagged):
        return tagged  # type: ignore[return-value]
    return None


def _s1_scale(bands: list[BandFile]) -> str:
    """``'db'`` if the backscatter looks like decibels (mostly negative), ``'linear'`` if like power."""
    with rasterio.open(bands[0].path) as src:
        h, w = min(src.height, 256), min(src.width, 256)
        data = src.read(bands[0].index, out_shape=(h, w), masked=True).astype("float64")
    values = data.compressed() if np.ma.isMaskedArray(data) else data.ravel()
    values = values[np.isfinite(values)]
    values = values[values != 0]
    if values.size == 0:
        return "db"
    if np.median(values) < 0 or (values < 0).mean() > 0.05:
        return "db"
    return "linear"


def discover(paths: list[str | Path], sensor: str, band_names: list[str] | None = None,
             warn: Any = None) -> list[Scene]:
    """Resolve user inputs into scenes sorted by date. ``band_names``: the bands of multi-band files, in order.
    ``warn(code, message)``: told about a per-band scene that lacks a band or holds one twice."""
    files = expand_paths(paths, sensor)
    per_band: dict[str, list[BandFile]] = defaultdict(list)
    info: dict[str, tuple] = {}
    resolutions: dict[Path, float] = {}
    scenes: list[Scene] = []
    for path in files:
        with _open(path) as src:
            _check_readable(src, path)
            token = band_token_in_filename(path.stem, sensor) if src.count == 1 else None
            tags = src.tags()
            meta = (src.crs, tuple(src.bounds), abs(src.res[0]), _date_of(path, tags))
            if src.crs is None:
                raise EoSslError("no_crs", f"{path} has no coordinate reference system.",
                                 "Assign a CRS to the raster (gdal_edit.py -a_srs EPSG:N) and try again.")
            if token is not None and not band_names:
                key = _group_key(path.stem, sensor)
                per_band[key].append(BandFile(path, 1, token, src.nodatavals[0], src.dtypes[0]))
                resolutions[path] = meta[2]
                # the group's CRS/bounds come from its finest band
                if key not in info or meta[2] < info[key][2]:
                    info[key] = meta
                continue
            names = _names_from_file(src, sensor)
            if band_names:
                if len(band_names) != src.count:
                    raise EoSslError(
                        "band_count_mismatch",
                        f"{path} has {src.count} bands but {len(band_names)} band names were given.",
                        f"Give one name per band in file order with {BAND_OPTION[sensor]}.")
                names = list(band_names)
            if names is None:
                example = "B02,B03,B04,B08" if sensor == "s2" else ",".join(S1_BANDS)
                raise EoSslError(
                    "unknown_bands",
                    f"Cannot tell which {SENSOR_LABEL[sensor]} band is which in {path}: "
                    f"its {src.count} band(s) have no recognisable names (descriptions or BAND_NAME tags).",
                    f"Give them in file order, e.g. {BAND_OPTION[sensor]} {example}.")
            if len(set(names)) != len(names):
                raise EoSslError("duplicate_bands", f"{path} names a band twice: {names}.",
                                 f"Check {BAND_OPTION[sensor]} or the band descriptions.")
            bands = [BandFile(path, i + 1, n, src.nodatavals[i], src.dtypes[i]) for i, n in enumerate(names)]
            scenes.append(Scene(sensor, meta[3], bands, meta[0], meta[1], meta[2], name=path.stem))
    for key, bands in per_band.items():
        crs, bounds, res, date = info[key]
        finest: dict[str, BandFile] = {}
        for b in bands:  # SAFE L2A holds some bands at several resolutions: keep the finest
            if b.name in finest and resolutions[b.path] == resolutions[finest[b.name].path] and warn is not None:
                warn("band_twice", f"{SENSOR_LABEL[sensor]} scene {key}: band {b.name} is given twice at the same "
                     f"resolution ({finest[b.name].path.name} and {b.path.name}); using {finest[b.name].path.name}. "
                     "Remove one of the files if that is the wrong one.")
            if b.name not in finest or resolutions[b.path] < resolutions[finest[b.name].path]:
                finest[b.name] = b
        _warn_missing(key, list(finest), sensor, warn)
        scenes.append(Scene(sensor, date, sorted(finest.values(), key=lambda b: _band_order(b.name, sensor)),
                            crs, bounds, res, name=key))
    if sensor == "s1":
        for s in scenes:
            s.scale = _s1_scale(s.bands)
    if len(scenes) > 1 and any(s.date is None for s in scenes):
        undated = [s.name for s in scenes if s.date is None][:3]
        raise EoSslError(
            "unknown_dates",
            f"{len(scenes)} {SENSOR_LABEL[sensor]} scenes were given but the date of {', '.join(undated)} is unknown.",
            "Put the date in the file names (YYYYMMDD) or set an ACQUISITION_DATE tag (gdal_edit.py -mo).")
    scenes.sort(key=lambda s: (s.date or dt.date.min, s.name))
    return scenes


def _warn_missing(scene: str, names: list[str], sensor: str, warn: Any) -> None:
    """A scene given one file per band that looks like a whole product (9 bands or more, or any of the 10 m bands)
    but lacks some (L2A has no B10) is said, not silently worked around: a file left out of a copy changes the
    cube's bands. A deliberate subset without a 10 m band gap (e.g. B02, B03, B04, B08) is not warned about."""
    expected = [b for b in (S2_BANDS if sensor == "s2" else S1_BANDS) if b != "B10"]
    missing = [b for b in expected if b not in names]
    ten_m = [b for b in ("B02", "B03", "B04", "B08") if b in missing]
    if warn is not None and missing and (sensor == "s1" or len(names) >= 9 or (ten_m and len(ten_m) < 4)):
        warn("band_missing", f"{SENSOR_LABEL[sensor]} scene {scene} is given one file per band but has no "
             f"{', '.join(missing)} file; it is read with {len(names)} band(s): {', '.join(names)}.")


def _group_key(stem: str, sensor: str) -> str:
    """The scene part of a per-band file name: ``T33UUU_20170216T102101_B02_10m`` -> ``T33UUU_20170216T102101``."""
    return FILE_BAND[sensor].sub("", stem) or stem


def _band_order(name: str, sensor: str) -> int:
    order = list(S2_BANDS) if sensor == "s2" else list(S1_BANDS)
    return order.index(name) if name in order else len(order)


def common_bands(scenes: list[Scene], sensor: str) -> list[str]:
    """The band list of a time series: the first scene's bands, which every other scene must have."""
    first = scenes[0].band_names
    for s in scenes[1:]:
        missing = [b for b in first if b not in s.band_names]
        if missing:
            raise EoSslError(
                "missing_bands",
                f"{SENSOR_LABEL[sensor]} scene {s.name} lacks band(s) {', '.join(missing)} that {scenes[0].name} has.",
                "Give scenes with the same bands, or name the bands of each file correctly.")
    return list(first)


def filter_poi(scenes: list[Scene], poi: tuple[dt.date, dt.date] | None, sensor: str) -> list[Scene]:
    """Scenes whose date lies in the period of interest (inclusive). Undated single scenes are kept."""
    if poi is None:
        return scenes
    kept = [s for s in scenes if s.date is None or poi[0] <= s.date <= poi[1]]
    if not kept:
        dates = [s.date.isoformat() for s in scenes if s.date]
        span = f"{min(dates)} .. {max(dates)}" if dates else "unknown"
        raise EoSslError("empty_poi",
                         f"No {SENSOR_LABEL[sensor]} scene falls in the period {poi[0]}/{poi[1]} "
                         f"({len(scenes)} scenes, dated {span}).",
                         "Widen --poi or pick scenes inside it.")
    return kept


#: the scenes of one day (or of no known date) that a sensor is read from, mosaicked
Acquisition = tuple[dt.date | None, list[Scene]]


def group_by_date(scenes: list[Scene]) -> list[Acquisition]:
    """Scenes of the same day are one acquisition (mosaicked: the first valid value wins)."""
    groups: dict[dt.date | None, list[Scene]] = defaultdict(list)
    for s in scenes:
        groups[s.date].append(s)
    return sorted(groups.items(), key=lambda kv: kv[0] or dt.date.min)
