"""``eo-ssl prepare``: Sentinel-1/2 rasters + AOI + POI (+ parcels) -> a chip store.

The input options (declared in :data:`backend.options.INPUTS`) and their resolution (:func:`resolve_inputs`) are
shared by every command that reads rasters (``predict``, ``export-dataset``), so they all accept the same inputs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.features import geometry_mask
from shapely.geometry.base import BaseGeometry

from backend import __version__, options
from backend.data.aoi import AOI, bbox_aoi, load_aoi, parse_poi
from backend.data.bands import S1_BANDS, parse_band_list
from backend.data.chipstore import BandStats, ChipStoreWriter, npy_bytes
from backend.data.feature_presets import FEATURES, describe, discover_features
from backend.data.grid import Grid, choose_grid, footprint
from backend.data.labels import IGNORE_INDEX, Parcels, load_parcels
from backend.data.scenes import BAND_OPTION, SENSOR_LABEL, Scene, common_bands, discover, filter_poi, group_by_date
from backend.data.warp import GridReader, read_stack
from backend.disk import check_free_space
from backend.errors import EoSslError
from backend.events import Events
from backend.outputs import Output, disk_errors

#: Memory for one window's block of all dates and bands (the writer's working set).
WINDOW_BUDGET_BYTES = 64 * 2**20


@dataclass
class Inputs:
    s2: list[Scene]
    s1: list[Scene]
    aoi: AOI | None
    poi: tuple[dt.date, dt.date] | None
    grid: Grid
    aoi_geom: BaseGeometry
    s2_bands: list[str]
    s1_bands: list[str]
    #: feature rasters (an embedding; :mod:`backend.data.feature_presets`): one acquisition, decoded to float32
    features: list[Scene] = field(default_factory=list)
    features_bands: list[str] = field(default_factory=list)

    def scenes(self, sensor: str) -> list[Scene]:
        """The scenes of a sensor (``s2``, ``s1``, ``features``)."""
        return {"s2": self.s2, "s1": self.s1, FEATURES: self.features}[sensor]

    def bands(self) -> dict[str, list[str]]:
        """Each given sensor's bands."""
        out = {"s2": self.s2_bands, "s1": self.s1_bands, FEATURES: self.features_bands}
        return {s: b for s, b in out.items() if self.scenes(s)}


def _band_arg(text: str | None, sensor: str) -> list[str] | None:
    if not text:
        return None
    try:
        return parse_band_list(text, sensor)
    except ValueError as exc:
        valid = "B01..B12, B8A" if sensor == "s2" else ", ".join(S1_BANDS)
        raise EoSslError("unknown_band_name", f"{BAND_OPTION[sensor]}: {exc.args[0]!r} is not a band name.",
                         f"Band names are {valid}.") from exc


def resolve_inputs(args: argparse.Namespace, events: Events) -> Inputs:
    """Discover scenes, apply the POI, read the AOI and choose the grid; every failure is an EoSslError."""
    feature_paths = getattr(args, "features", None)
    if not args.s2 and not feature_paths:
        raise EoSslError("no_s2", "No Sentinel-2 input was given.", "Give --s2 PATH... (files or folders), or "
                         "--features RASTER... (an embedding) for a store of features alone.")
    if args.aoi and args.bbox:
        raise EoSslError("aoi_twice", "Both --aoi and --bbox were given.", "Give one of them.")
    poi = parse_poi(args.poi)
    aoi = load_aoi(args.aoi, args.aoi_layer) if args.aoi else (bbox_aoi(args.bbox, args.bbox_crs) if args.bbox
                                                                else None)
    features: list[Scene] = []
    if feature_paths:  # annual products: never filtered by the POI
        features = _overlapping(discover_features(feature_paths, getattr(args, "features_preset", None) or "auto",
                                                  events.warning), aoi, events)
        events.log(f"Feature rasters: {describe(features)}")
    s2, s2_bands = _sensor_scenes(args.s2, "s2", args.s2_bands, poi, aoi, events)
    s1, s1_bands = _sensor_scenes(args.s1, "s1", args.s1_bands, poi, aoi, events)
    if args.s1:
        linear = [s.name for s in s1 if s.scale == "linear"]
        events.log(f"Sentinel-1: {len(s1)} scene(s), {', '.join(s1_bands)}; "
                   + (f"{len(linear)} in linear power, converted to dB" if linear else "values already in dB"))
    # the grid is Sentinel-2's; a store of features alone takes the feature rasters' (CRS, pixels)
    grid, aoi_geom = choose_grid(s2 or features, aoi, args.crs, args.resolution, s1 or None)
    events.log((f"Sentinel-2: {len(s2)} scene(s), bands {', '.join(s2_bands)}; " if s2 else "")
               + f"grid {grid.width} x {grid.height} px at {grid.resolution:g} m in {grid.crs.name}")
    return Inputs(s2, s1, aoi, poi, grid, aoi_geom, s2_bands, s1_bands, features,
                  common_bands(features, FEATURES) if features else [])


def _sensor_scenes(paths: list[str] | None, sensor: str, bands: str | None, poi: tuple[dt.date, dt.date] | None,
                   aoi: AOI | None, events: Events) -> tuple[list[Scene], list[str]]:
    """The scenes of ``sensor`` under ``paths`` (``bands``: the --s2-bands/--s1-bands text) in the POI that overlap
    the AOI, and the bands they all have; ([], []) without ``paths``."""
    if not paths:
        return [], []
    scenes = _overlapping(filter_poi(discover(paths, sensor, _band_arg(bands, sensor), events.warning), poi, sensor),
                          aoi, events)
    return scenes, common_bands(scenes, sensor)


def _overlapping(scenes: list[Scene], aoi: AOI | None, events: Events) -> list[Scene]:
    """The scenes whose footprint overlaps the AOI: a scene of another place would only add an empty date.
    When none overlaps, all are kept, so that :func:`choose_grid` reports the AOI as outside the rasters."""
    if aoi is None or len(scenes) < 2:
        return scenes
    kept = [s for s in scenes if footprint(s, aoi.crs).intersection(aoi.geometry).area > 0]
    if kept and len(kept) < len(scenes):
        left = [s.name for s in scenes if s not in kept]
        events.log(f"{SENSOR_LABEL[scenes[0].sensor]}: left out {len(left)} scene(s) that do not overlap the AOI: "
                   + ", ".join(left[:5]) + (" ..." if len(left) > 5 else ""))
    return kept or scenes


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options (declared in :mod:`backend.options`: the raster inputs there are shared with predict and
    export-dataset)."""
    options.add_arguments(p, "prepare")


def run(args: argparse.Namespace, events: Events) -> dict[str, Any]:
    fractions = (1 - args.val_fraction - args.test_fraction, args.val_fraction, args.test_fraction)
    if min(fractions) < 0:
        raise EoSslError("bad_split", "--val-fraction + --test-fraction exceed 1.", "Use e.g. 0.15 and 0.15.")
    input_paths = options.paths("prepare", args, "input")
    if args.chips:
        from backend.data.chips import prepare_chips

        if args.s2 or args.s1:
            raise EoSslError("chips_and_rasters", "--chips cannot be combined with --s2/--s1.",
                             "Give one kind of input.")
        return prepare_chips(args.chips, args.out, events, band_names=_band_arg(args.chip_bands, "s2"),
                             overwrite=args.overwrite, seed=args.seed, fractions=fractions, inputs=input_paths)
    if bool(args.parcels) != bool(args.class_field):
        raise EoSslError("class_field_missing" if args.parcels else "parcels_missing",
                         "--parcels and --class-field go together.", "Give both, or neither.")
    # before any reading: fail fast (the writer checks again when it starts)
    Output(args.out, kind="chipstore", folder=True, replace=args.overwrite, inputs=input_paths).check().log_swept(
        events.log)
    inputs = resolve_inputs(args, events)
    parcels = None
    if args.parcels:
        parcels = load_parcels(args.parcels, args.class_field, inputs.grid, inputs.aoi_geom, split=args.split,
                               fractions=fractions, block_size_m=args.block_size, seed=args.seed,
                               layer=args.parcels_layer, warn=events.warning)
        events.log(f"Parcels: {len(parcels.geoms)} in the AOI, {len(parcels.classes)} classes "
                   f"({', '.join(c['name'] for c in parcels.classes)}); split {parcels.split_info['parcels']}")
    return build_cube(inputs, parcels, Path(args.out), events, overwrite=args.overwrite, window=args.window,
                      command=sys.argv, input_paths=input_paths)


def _window_size(bytes_per_pixel: int, requested: int) -> int:
    if requested:
        return requested
    side = int(math.sqrt(WINDOW_BUDGET_BYTES / max(bytes_per_pixel, 1)))
    return int(min(1024, max(64, side // 64 * 64)))


def build_cube(inputs: Inputs, parcels: Parcels | None, out: Path, events: Events, *, overwrite: bool = False,
               window: int = 0, command: list[str] | None = None,
               input_paths: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    grid = inputs.grid
    h, w = grid.shape
    s2_groups = group_by_date(inputs.s2)
    s1_groups = group_by_date(inputs.s1)
    f_groups = group_by_date(inputs.features)  # one acquisition: the tiles of an annual product
    s2_dtype = np.result_type(*[b.dtype for s in inputs.s2 for b in s.bands if b.name in inputs.s2_bands]) \
        if inputs.s2 else np.dtype(np.float32)
    t2, c2, t1, c1 = len(s2_groups), len(inputs.s2_bands), len(s1_groups), len(inputs.s1_bands)
    tf, cf = len(f_groups), len(inputs.features_bands)
    bpp = t2 * c2 * s2_dtype.itemsize + t1 * c1 * 4 + tf * cf * 4 + t2 + t1 + tf + 12
    size = _window_size(bpp, window)

    writer = ChipStoreWriter(out, overwrite, input_paths)
    writer.output.log_swept(events.log)
    shapes: dict[str, tuple[tuple[int, ...], Any]] = {"aoi": ((h, w), np.uint8)}
    if t2:
        shapes.update(s2=((h, w, t2, c2), s2_dtype), s2_valid=((h, w, t2), np.uint8))
    if tf:
        shapes.update(features=((h, w, tf, cf), np.float32), features_valid=((h, w, tf), np.uint8))
    if t1:
        shapes.update(s1=((h, w, t1, c1), np.float32), s1_valid=((h, w, t1), np.uint8))
    if parcels is not None:
        shapes.update(labels=((h, w), np.int16), parcels=((h, w), np.int32), split=((h, w), np.uint8))
    needed = sum(npy_bytes(shape, dtype) for shape, dtype in shapes.values())
    try:
        check_free_space(out, needed, "The chip store")  # its size is known: fail before the first byte
        arrays = {name: writer.create(name, shape, dtype) for name, (shape, dtype) in shapes.items()}
        s2_arr, s2_valid, aoi_arr = arrays.get("s2"), arrays.get("s2_valid"), arrays["aoi"]
        s1_arr, s1_valid = arrays.get("s1"), arrays.get("s1_valid")
        f_arr, f_valid = arrays.get("features"), arrays.get("features_valid")
        if parcels is not None:
            lab_arr, par_arr, spl_arr = arrays["labels"], arrays["parcels"], arrays["split"]
        s2_stats, s1_stats, f_stats = BandStats(c2), BandStats(c1), BandStats(cf)
        class_pixels = np.zeros(len(parcels.classes) if parcels else 0, np.int64)
        parcel_pixels = np.zeros(len(parcels.geoms) if parcels else 0, np.int64)
        windows = list(grid.windows(size))
        events.log(f"Writing {h} x {w} px, {t2} S2 date(s) x {c2} bands"
                   + (f", {t1} S1 date(s) x {c1}" if t1 else "") + (f", {cf} features" if tf else "")
                   + f" in {len(windows)} window(s) of {size} px")
        with GridReader(grid) as reader, disk_errors(out, needed):
            for step, win in enumerate(windows, start=1):
                events.check_cancel()
                r0, c0 = int(win.row_off), int(win.col_off)
                r1, c1_ = r0 + int(win.height), c0 + int(win.width)
                inside = geometry_mask([inputs.aoi_geom], out_shape=(int(win.height), int(win.width)),
                                       transform=grid.window_transform(win), invert=True)
                aoi_arr[r0:r1, c0:c1_] = inside
                if t2:
                    block, valid = read_stack(reader, s2_groups, inputs.s2_bands, win, s2_dtype, inside)
                    s2_arr[r0:r1, c0:c1_] = block
                    s2_valid[r0:r1, c0:c1_] = valid
                    _update_stats(s2_stats, block, valid)
                if tf:
                    block_f, valid_f = read_stack(reader, f_groups, inputs.features_bands, win,
                                                  np.dtype(np.float32), inside)
                    f_arr[r0:r1, c0:c1_] = block_f
                    f_valid[r0:r1, c0:c1_] = valid_f
                    _update_stats(f_stats, block_f, valid_f)
                if t1:
                    block1, valid1 = read_stack(reader, s1_groups, inputs.s1_bands, win, np.dtype(np.float32),
                                                 inside, to_db=True)
                    s1_arr[r0:r1, c0:c1_] = block1
                    s1_valid[r0:r1, c0:c1_] = valid1
                    _update_stats(s1_stats, block1, valid1)
                if parcels is not None:
                    labels, pidx, split = parcels.rasterize(grid, win)
                    outside = ~inside
                    labels[outside], pidx[outside], split[outside] = IGNORE_INDEX, -1, 0
                    lab_arr[r0:r1, c0:c1_], par_arr[r0:r1, c0:c1_], spl_arr[r0:r1, c0:c1_] = labels, pidx, split
                    class_pixels += np.bincount(labels[labels >= 0], minlength=len(class_pixels))
                    parcel_pixels += np.bincount(pidx[pidx >= 0], minlength=len(parcel_pixels))
                events.progress(step, len(windows), stage="prepare")
        if t2 and s2_stats.n.sum() == 0:
            raise EoSslError("all_nodata", "Every Sentinel-2 pixel inside the AOI is nodata (clouds masked, or "
                             "the AOI lies in the scenes' empty margin).", "Pick another AOI, POI or scenes.")
        if tf and f_stats.n.sum() == 0:
            raise EoSslError("all_nodata", "Every feature-raster pixel inside the AOI is nodata (the rasters do not "
                             "cover the AOI or the Sentinel-2 scenes).", "Give feature rasters of the same place.")
        if parcels is not None:
            _report_parcel_pixels(parcels, parcel_pixels, events)
        manifest = _manifest(inputs, parcels, s2_stats, s1_stats, s2_dtype, s2_groups, s1_groups, class_pixels,
                             command, f_stats)
        events.check_cancel()  # the last safe point: a signal after it finds the store complete
        with disk_errors(out, needed):
            writer.commit(manifest)
    except BaseException:
        writer.abort()
        raise
    events.artifact("chipstore", str(out))
    summary: dict[str, Any] = {"out": str(out), "grid": f"{w} x {h} px at {grid.resolution:g} m, {grid.crs.name}"}
    if t2:
        summary["s2"] = f"{t2} date(s) x {c2} bands"
        summary["s2_valid_fraction"] = round(float(manifest["sensors"]["s2"]["valid_fraction"]), 4)
    if tf:
        summary["features"] = f"{cf} bands ({manifest['sensors'][FEATURES]['preset']})"
        summary["features_valid_fraction"] = round(float(manifest["sensors"][FEATURES]["valid_fraction"]), 4)
    if t1:
        summary["s1"] = f"{t1} date(s) x {c1} polarisations"
    if parcels is not None:
        summary["classes"] = len(parcels.classes)
        summary["parcels"] = parcels.split_info["parcels"]
    return summary


def _report_parcel_pixels(parcels: Parcels, pixels: np.ndarray, events: Events) -> None:
    """Say how many parcels were drawn all-touched (no pixel centre inside) and which got no pixel at all; both go
    into the manifest's split record."""
    touched = int(parcels.touched.sum())
    empty = np.nonzero(pixels == 0)[0]
    parcels.split_info["all_touched"] = touched
    parcels.split_info["without_pixels"] = int(len(empty))
    if touched:
        events.log(f"{touched} parcel(s) hold no pixel centre: drawn with every pixel they touch (all-touched)")
    if len(empty):
        events.warning("parcels_without_pixels", f"{len(empty)} of {len(pixels)} parcel(s) got no pixel in the "
                       f"store (e.g. feature {int(parcels.fids[empty[0]])}: the part of it in the AOI holds no "
                       "pixel); they are counted in the split but carry no label.")


def _update_stats(stats: BandStats, block: np.ndarray, valid: np.ndarray) -> None:
    mask = valid.astype(bool)
    if not mask.any():
        return
    for c in range(block.shape[-1]):
        stats.update(c, block[..., c][mask])


def _scene_record(s: Scene) -> dict:
    return {"name": s.name, "date": s.date.isoformat() if s.date else None, "files": [str(f) for f in s.files],
            "bands": s.band_names, "band_sources": {b.name: {"file": str(b.path), "band": b.index} for b in s.bands},
            **({"scale": s.scale} if s.sensor == "s1" else {}), **(s.extra if s.sensor == FEATURES else {})}


def _manifest(inputs: Inputs, parcels: Parcels | None, s2_stats: BandStats, s1_stats: BandStats,
              s2_dtype: np.dtype, s2_groups: list, s1_groups: list, class_pixels: np.ndarray,
              command: list[str] | None, f_stats: BandStats | None = None) -> dict[str, Any]:
    def iso(d: dt.date | None) -> str | None:
        return d.isoformat() if d else None

    n_aoi = None
    sensors: dict[str, Any] = {}
    if inputs.s2:
        sensors["s2"] = {"bands": inputs.s2_bands, "dates": [iso(d) for d, _ in s2_groups], "dtype": str(s2_dtype),
                         "file": "s2.npy", "valid_file": "s2_valid.npy", "nodata_fill": 0,
                         "scale": "reflectance x 10000" if s2_dtype.kind in "ui" else "as source",
                         "stats": s2_stats.result(inputs.s2_bands),
                         "valid_fraction": None, "scenes": [_scene_record(s) for s in inputs.s2]}
    if inputs.s1:
        sensors["s1"] = {"bands": inputs.s1_bands, "dates": [iso(d) for d, _ in s1_groups], "dtype": "float32",
                         "file": "s1.npy", "valid_file": "s1_valid.npy", "nodata_fill": 0, "scale": "dB",
                         "stats": s1_stats.result(inputs.s1_bands), "valid_fraction": None,
                         "scenes": [_scene_record(s) for s in inputs.s1]}
    if inputs.features:
        assert f_stats is not None
        sensors[FEATURES] = {"bands": inputs.features_bands, "dates": [None], "dtype": "float32",
                             "file": "features.npy", "valid_file": "features_valid.npy", "nodata_fill": 0,
                             "scale": "decoded", "preset": inputs.features[0].extra["preset"],
                             "stats": f_stats.result(inputs.features_bands), "valid_fraction": None,
                             "scenes": [_scene_record(s) for s in inputs.features]}
    n_aoi = max(1, int(inputs.aoi_geom.area / inputs.grid.resolution**2))
    for key, stats in (("s2", s2_stats), ("s1", s1_stats), (FEATURES, f_stats)):
        if key in sensors:
            t = len(sensors[key]["dates"])
            sensors[key]["valid_fraction"] = float(min(1.0, stats.n[0] / max(1, n_aoi * t)))
    manifest: dict[str, Any] = {
        "kind": "cube",
        "grid": inputs.grid.to_dict(),
        "sensors": sensors,
        "aoi": {"wkt": inputs.aoi_geom.wkt, "file": "aoi.npy",
                "source": inputs.aoi.source if inputs.aoi else "union of the Sentinel-2 footprints"},
        "poi": [inputs.poi[0].isoformat(), inputs.poi[1].isoformat()] if inputs.poi else None,
        "provenance": {"created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                       "code_version": __version__, "command": command or [],
                       "python": platform.python_version()},
    }
    if parcels is not None:
        classes = [dict(c, pixels=int(class_pixels[c["id"]])) for c in parcels.classes]
        manifest["labels"] = {"file": "labels.npy", "parcels_file": "parcels.npy", "split_file": "split.npy",
                              "source": parcels.source, "class_field": parcels.class_field,
                              "ignore_index": IGNORE_INDEX, "classes": classes,
                              "split": {**parcels.split_info, "codes": {"none": 0, "train": 1, "val": 2, "test": 3}},
                              "parcel_fids": parcels.fids.tolist()}
    return manifest
