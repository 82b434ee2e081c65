"""Feature rasters: any multi-band per-pixel raster (an embedding) as the chip store's third block, ``features``.

A feature raster is read like a Sentinel-1 scene (onto the analysis grid, one window at a time, through
:class:`backend.data.warp.GridReader`) and then *decoded* to float32 by its preset:

- ``alphaearth``: Google's AlphaEarth Foundations Satellite Embedding (64 bands A00..A63, signed 8-bit, nodata
  -128; value = sign(v) (|v| / 127.5)^2, unit length per pixel). The Source Cooperative copy stores its files
  bottom-up (positive y resolution); GDAL's warper reads them the right way up, and a VRT beside a file (which reads
  it the right way) is taken instead of the file when both are given or found in a folder.
- ``tessera``: TESSERA (128 bands, int8) with its per-pixel scales: value = v x scale, the scales a one-band raster
  beside the file (``<stem>_scales.tif``, or the same name with ``scales`` for the file's ``embeddings``: the
  geotessera ``.npy`` pair written as GeoTIFFs).
- ``scaled``: everything else (Clay, eo-ssl's own ``embed`` output, a float GeoTIFF): GDAL's per-band scale and
  offset (value = v x scale + offset, 1 and 0 when the file has none) and its nodata.

Quantised presets (``alphaearth``, ``tessera``) are resampled nearest-neighbour: a mean of codes is not the code of
a mean (AlphaEarth's is quadratic; TESSERA's scale is per pixel). ``scaled`` is linear, so bilinear resampling of the
stored values equals bilinear resampling of the decoded ones, as for S1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from backend.errors import EoSslError
from backend.options import FEATURE_PRESETS as PRESET_NAMES

if TYPE_CHECKING:
    from backend.data.scenes import Scene

#: the chip store's sensor key of the feature block
FEATURES = "features"
ALPHAEARTH_NODATA = -128


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    resampling: str  # nearest | bilinear (rasterio's Resampling names)
    nodata: float | None = None  # forced when the file declares none
    band_prefix: str | None = None  # fixed band names: prefix + zero-padded index (None: the file's descriptions)
    digits: int = 2


PRESETS: dict[str, Preset] = {
    "alphaearth": Preset("alphaearth", "AlphaEarth Foundations Satellite Embedding (int8, sign(v)(|v|/127.5)^2)",
                         "nearest", ALPHAEARTH_NODATA, "A", 2),
    "tessera": Preset("tessera", "TESSERA embedding (int8 x per-pixel scale)", "nearest", None, "T", 3),
    "scaled": Preset("scaled", "GDAL scale/offset (eo-ssl embed, Clay, float rasters)", "bilinear"),
}


def alphaearth_decode(v: np.ndarray) -> np.ndarray:
    """AlphaEarth's de-quantisation: sign(v) (|v| / 127.5)^2 as float32 (nodata is the caller's)."""
    x = v.astype(np.float32) / np.float32(127.5)
    return np.sign(x) * x * x


def alphaearth_encode(x: np.ndarray) -> np.ndarray:
    """The inverse (for tests and for writing AlphaEarth-format files): int8 codes in -127..127 (-128 = nodata)."""
    q = np.sign(x) * np.sqrt(np.abs(x)) * 127.5
    return np.clip(np.rint(q), -127, 127).astype(np.int8)


def detect_preset(count: int, dtype: str, descriptions: tuple[str | None, ...]) -> str:
    """The preset of a file from its band count, data type and band names."""
    names = [d or "" for d in descriptions]
    if np.dtype(dtype) == np.int8 and count == 64:
        return "alphaearth"
    if count == 64 and all(re.fullmatch(r"A\d\d", n) for n in names) and np.dtype(dtype).kind in "iu":
        return "alphaearth"
    if np.dtype(dtype) == np.int8 and count == 128:
        return "tessera"
    return "scaled"


def scales_file(path: Path) -> Path | None:
    """TESSERA's per-pixel scales beside ``path``: ``<stem>_scales.<ext>`` or ``embeddings`` -> ``scales``."""
    candidates = [path.with_name(f"{path.stem}_scales{path.suffix}")]
    if "embeddings" in path.name:
        candidates.append(path.with_name(path.name.replace("embeddings", "scales")))
    return next((c for c in candidates if c.exists()), None)


def _prefer_vrt(files: list[Path]) -> list[Path]:
    """A VRT and a GeoTIFF of the same name: the VRT (Source Cooperative's AlphaEarth VRTs read their bottom-up
    GeoTIFFs the right way up). TESSERA scale files are the data's companions, never features themselves."""
    vrts = {f.with_suffix("") for f in files if f.suffix.lower() == ".vrt"}
    names = {f.name for f in files}
    return [f for f in files if not (f.suffix.lower() != ".vrt" and f.with_suffix("") in vrts)
            and not f.stem.endswith("_scales")
            and not ("scales" in f.name and f.name.replace("scales", "embeddings") in names)]


def discover_features(paths: list[str | Path], preset: str = "auto", warn: Any = None) -> list[Scene]:
    """The feature rasters of ``--features`` (files or folders) as :class:`Scene` s of sensor ``features``, one
    acquisition (mosaicked: several tiles of one product). Every file must have the same bands and preset."""
    import rasterio

    from backend.data.scenes import BandFile, Scene, _check_readable, _open, expand_paths

    if preset not in PRESET_NAMES:
        raise EoSslError("bad_argument", f"--features-preset {preset!r} is not a preset.",
                         f"Use one of {', '.join(PRESET_NAMES)}.")
    files = _prefer_vrt(expand_paths(paths, FEATURES))
    scenes: list[Scene] = []
    for path in files:
        with _open(path) as src:
            _check_readable(src, path)
            if src.crs is None:
                raise EoSslError("no_crs", f"{path} has no coordinate reference system.",
                                 "Assign a CRS to the raster (gdal_edit.py -a_srs EPSG:N) and try again.")
            name = detect_preset(src.count, src.dtypes[0], src.descriptions) if preset == "auto" else preset
            p = PRESETS[name]
            extra: dict[str, Any] = {"preset": name, "bottom_up": bool(src.transform.e > 0)}
            if p.band_prefix:
                names = [f"{p.band_prefix}{i:0{p.digits}d}" for i in range(src.count)]
            else:
                desc = [d.strip() if d else "" for d in src.descriptions]
                names = desc if all(desc) and len(set(desc)) == len(desc) else \
                    [f"F{i + 1:02d}" for i in range(src.count)]
            if name == "scaled":
                extra["scales"] = [float(s) for s in src.scales]
                extra["offsets"] = [float(o) for o in src.offsets]
            if name == "tessera":
                sf = scales_file(path)
                if sf is None:
                    raise EoSslError("missing_scales", f"{path} is a TESSERA embedding (128 int8 bands) without its "
                                     "per-pixel scales.", f"Put the scales beside it as {path.stem}_scales"
                                     f"{path.suffix} (one band, float32), or give --features-preset scaled for "
                                     "values already de-quantised.")
                with rasterio.open(sf) as s:
                    if (s.width, s.height) != (src.width, src.height):
                        raise EoSslError("missing_scales", f"{sf} is {s.width} x {s.height} px; {path} is "
                                         f"{src.width} x {src.height}.", "Give the scales of the same tile.")
                extra["scales_file"] = str(sf)
            nodata = [src.nodatavals[i] if src.nodatavals[i] is not None else p.nodata for i in range(src.count)]
            bands = [BandFile(path, i + 1, n, nodata[i], src.dtypes[i]) for i, n in enumerate(names)]
            left, bottom, right, top = src.bounds  # bottom > top for a file stored bottom-up
            bounds = (min(left, right), min(bottom, top), max(left, right), max(bottom, top))
            scenes.append(Scene(FEATURES, None, bands, src.crs, bounds, abs(src.res[0]), name=path.stem, extra=extra))
    first = scenes[0]
    for s in scenes[1:]:
        if s.band_names != first.band_names or s.extra["preset"] != first.extra["preset"]:
            raise EoSslError("features_mismatch", f"Feature rasters {first.name} and {s.name} differ (bands "
                             f"{len(first.bands)} vs {len(s.bands)}, preset {first.extra['preset']} vs "
                             f"{s.extra['preset']}).", "Give tiles of one product (the same bands and encoding).")
    return scenes


def read_features(reader: Any, scene: Scene, names: list[str], window: Any) -> tuple[np.ndarray, np.ndarray]:
    """Bands ``names`` of a feature raster over a window of the reader's grid, decoded to float32 (C, h, w) (0 where
    invalid), and where every band is valid (h, w)."""
    from rasterio.enums import Resampling

    from backend.data.scenes import BandFile

    preset = PRESETS[scene.extra["preset"]]
    resampling = Resampling[preset.resampling]
    bands = [scene.band(n) for n in names]
    data, valid = reader.read_many(bands, window, resampling=resampling)
    ok = valid.all(axis=0)
    if preset.name == "alphaearth":
        x = alphaearth_decode(data)
    elif preset.name == "tessera":
        sf = Path(scene.extra["scales_file"])
        scale, s_ok = reader.read(BandFile(sf, 1, "scale", None, "float32"), window, resampling=resampling)
        x = data.astype(np.float32) * scale.astype(np.float32)[None]
        ok &= s_ok
    else:
        idx = [b.index - 1 for b in bands]
        scales = np.asarray(scene.extra.get("scales") or [1.0] * (max(idx) + 1), np.float32)[idx]
        offsets = np.asarray(scene.extra.get("offsets") or [0.0] * (max(idx) + 1), np.float32)[idx]
        x = data.astype(np.float32) * scales[:, None, None] + offsets[:, None, None]
    ok &= np.isfinite(x).all(axis=0)
    x[:, ~ok] = 0
    return x, ok


def describe(scenes: list[Scene]) -> str:
    """One line for the log: how many files, bands, which preset."""
    s = scenes[0]
    flipped = sum(bool(x.extra.get("bottom_up")) for x in scenes)
    return (f"{len(scenes)} file(s), {len(s.bands)} bands ({s.bands[0].name}..{s.bands[-1].name}), preset "
            f"{s.extra['preset']}" + (f"; {flipped} stored bottom-up, read the right way up" if flipped else ""))
