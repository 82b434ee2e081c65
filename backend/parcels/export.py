"""``eo-ssl export-dataset``: labelled parcels + Sentinel-1/2 imagery -> a chip dataset any rasterio user can read.

Layout of ``DATASET_DIR`` (format ``eo-ssl-dataset``, version 1; see the README):

```
dataset.json            bands/channels, dates, classes (id, name, colour), grid, normalisation, split, chips,
                        provenance, licences and attribution
index.gpkg              layer "chips": one footprint polygon per chip (grid CRS) with its split, classes and parcels
images/<id>.tif         one GeoTIFF per chip: every channel of the chosen sensors and dates, band descriptions set
masks/<id>.tif          uint8 class ids on the same grid, 255 = ignore (nodata), colour table, CLASS_NAMES tag
splits/train.txt ...    chip ids per split, one per line
ATTRIBUTION.md          licences and attribution of the imagery and the labels
```

Chips: one ``--chip`` x ``--chip`` chip centred on each parcel that fits in one; larger parcels are tiled with
evenly spaced chips covering their extent (tiles holding under 5 % parcel are left out). The split is decided per
parcel (``by-parcel``: stratified by class; ``by-block``: by the spatial block holding the parcel) and a chip takes
its parcel's split. A mask holds only parcels of the chip's split: neighbours of another split are 255 (ignore),
so no parcel's labels appear on both sides of a split. Pixels without any valid imagery are 255 too. Where
parcels overlap, a chip's own parcel is drawn on top, then smaller parcels over larger ones.

Imagery is read one group of nearby chips at a time (one window per group, bounded in memory), from a prepared
chip store (``--data``) or from the source rasters (``--s2``/``--s1``/``--features``, the same options as
``prepare``): the sources and the channels are in :mod:`backend.parcels.imagery`, where the chips go in
:mod:`backend.parcels.chip_layout`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import shapely
from affine import Affine
from pyproj import CRS
from rasterio.features import rasterize
from rasterio.windows import Window

from backend import __version__, options
from backend.data.chipstore import SPLIT_NAMES, SPLITS, BandStats
from backend.data.feature_presets import FEATURES
from backend.data.grid import Grid
from backend.data.labels import class_colour, split_by_block, split_stratified
from backend.errors import EoSslError
from backend.events import Events
from backend.outputs import Output, disk_errors
from backend.parcels.chip_layout import Chip, chip_box, group_chips, place_chips
from backend.parcels.imagery import Channel, RasterSource, StoreSource, assemble, plan_channels
from backend.parcels.label import METADATA_KEY
from backend.parcels.vector import ParcelLayer, read_parcels, reproject_many, write_gpkg

FORMAT = "eo-ssl-dataset"
VERSION = 1
IGNORE = 255
#: Memory for one group's window of all dates and bands.
GROUP_BUDGET_BYTES = 64 * 2**20
SENTINEL_ATTRIBUTION = "Contains modified Copernicus Sentinel data {years} (Copernicus Sentinel data terms: free, " \
                       "full and open access; attribution required)."


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options, declared in :mod:`backend.options` (the raster inputs are prepare's)."""
    options.add_arguments(p, "export-dataset")


# -- classes and parcels ----------------------------------------------------------------------------------------


def _sort_key(value: Any) -> tuple:
    try:
        return (0, float(value), str(value))
    except (TypeError, ValueError):
        return (1, 0.0, str(value))


def class_table(values: np.ndarray, layer: ParcelLayer, class_field: str) -> list[dict[str, Any]]:
    """Classes 0..K-1 in the sort order of their values; colours from label-parcels' metadata where it has them."""
    unique = sorted({str(v) for v in values}, key=_sort_key)
    known: dict[str, str] = {}
    meta = layer.metadata.get(METADATA_KEY)
    if meta:
        try:
            for c in json.loads(meta).get("classes", []):
                known[str(c["name"])] = c.get("colour")
                known.setdefault(str(c["id"]), c.get("colour"))
        except (json.JSONDecodeError, KeyError, TypeError):
            pass
    return [{"id": i, "name": v, "value": v, "colour": known.get(v) or class_colour(v, i)}
            for i, v in enumerate(unique)]


def _is_null(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or str(v) == ""


# -- the command ------------------------------------------------------------------------------------------------


def _check_args(args: argparse.Namespace) -> tuple[float, float, float]:
    if args.data and (args.s2 or args.s1 or args.features):
        raise EoSslError("data_and_rasters", "--data cannot be combined with --s2/--s1/--features.",
                         "Give one kind of input.")
    if not args.data and not args.s2 and not args.features:
        raise EoSslError("no_input", "No imagery was given.", "Give --data STORE (from eo-ssl prepare), --s2 ... or "
                         "--features RASTER ....")
    fractions = (1 - args.val_fraction - args.test_fraction, args.val_fraction, args.test_fraction)
    if min(fractions) < 0:
        raise EoSslError("bad_split", "--val-fraction + --test-fraction exceed 1.", "Use e.g. 0.15 and 0.15.")
    return fractions


def _sensors_arg(text: str | None) -> list[str] | None:
    if not text:
        return None
    out = [t.strip().lower() for t in text.split(",") if t.strip()]
    bad = [t for t in out if t not in ("s2", "s1", FEATURES)]
    if bad or not out:
        raise EoSslError("bad_sensors", f"--sensors {text!r}: {', '.join(bad) or 'empty'} is not a sensor.",
                         f"Use s2, s1, {FEATURES} or a comma-separated list such as s2,s1.")
    return out


def select_parcels(layer: ParcelLayer, args: argparse.Namespace, events: Events) -> np.ndarray:
    """Indices of the parcels to export: a polygon, a class value, and the wanted status."""
    if args.class_field not in layer.fields:
        raise EoSslError("class_field_missing", f"The parcels file {layer.path} has no field {args.class_field!r}.",
                         f"Pick one of its fields: {', '.join(layer.fields) or '(none)'}.")
    keep = np.array([g is not None for g in layer.geoms], bool)
    if not keep.any() and (layer.problem == "not_polygon").any():
        raise EoSslError("not_polygon", f"The parcels of {layer.path} are not polygons "
                         f"({layer.geometry_type}): chips and masks are cut from parcel polygons.",
                         "Give a polygon layer (in QGIS: Buffer points, or digitise the parcels).")
    values = layer.column(args.class_field)
    has_value = np.array([not _is_null(v) for v in values], bool)
    if (keep & ~has_value).any():
        events.log(f"{int((keep & ~has_value).sum())} parcel(s) without a {args.class_field!r} value left out")
    keep &= has_value
    wanted = [s.strip() for s in args.status.split(",")] if args.status else None
    if "status" in layer.fields:
        wanted = wanted or ["labelled"]
        status = np.array([str(s) for s in layer.column("status")], dtype=object)
        ok = np.isin(status, wanted)
        if not (keep & ok).any():
            present = sorted(set(status[keep].tolist()))
            raise EoSslError("no_parcels", f"No parcel of {layer.path} has status {', '.join(wanted)}.",
                             f"Its parcels' statuses: {', '.join(present) or '(none)'}; pick from these with --status.")
        events.log(f"Status filter {','.join(wanted)}: {int((keep & ok).sum())} of {int(keep.sum())} parcel(s)")
        keep &= ok
    elif wanted:
        raise EoSslError("status_field_missing", f"--status was given but {layer.path} has no `status` field.",
                         "Label the parcels with eo-ssl label-parcels first, or leave --status out.")
    return np.nonzero(keep)[0]


def run(args: argparse.Namespace, events: Events) -> dict[str, Any]:
    fractions = _check_args(args)
    output = Output(args.out, kind="dataset", folder=True, replace=args.overwrite,
                    inputs=options.paths("export-dataset", args, "input")).check().log_swept(events.log)
    sensors_wanted = _sensors_arg(args.sensors)
    layer = read_parcels(args.parcels, args.parcels_layer, args.id_field, warn=events.warning)
    chosen = select_parcels(layer, args, events)
    if not len(chosen):
        raise EoSslError("no_parcels", f"No parcel of {args.parcels} has a polygon, a {args.class_field!r} value and "
                         "the wanted status.", "Check --class-field and --status.")
    source = StoreSource(args.data, sensors_wanted) if args.data else RasterSource(args, events, sensors_wanted)
    try:
        return _export(args, events, output, layer, chosen, source, fractions)
    finally:
        source.close()


def _export(args: argparse.Namespace, events: Events, output: Output, layer: ParcelLayer, chosen: np.ndarray,
            source: StoreSource | RasterSource, fractions: tuple[float, float, float]) -> dict[str, Any]:
    grid, size, out = source.grid, args.chip, output.path
    if size > min(grid.shape):
        raise EoSslError("chip_too_large", f"--chip {size} exceeds the grid ({grid.width} x {grid.height} px).",
                         f"Use --chip {min(grid.shape)} or less, or a larger AOI.")
    geoms = reproject_many(layer.geoms[chosen], layer.crs, grid.crs)
    region = shapely.intersection(source.aoi, shapely.box(*grid.bounds))
    ok = np.array([g is not None and g.intersects(region) for g in geoms], bool)
    if not ok.any():
        bounds = ", ".join(f"{v:.0f}" for v in grid.bounds)
        raise EoSslError("parcels_outside", f"None of the {len(ok)} parcel(s) of {args.parcels} lies inside the "
                         f"imagery{'/AOI' if args.aoi or args.bbox or args.data else ''} "
                         f"({CRS.from_user_input(grid.crs).name}, bounds {bounds}).",
                         "Check that the parcels and the imagery cover the same place (and that both CRSs are right).")
    if (~ok).any():
        events.warning("parcels_outside", f"{int((~ok).sum())} parcel(s) lie outside the imagery/AOI and were left "
                       "out.")
    chosen, geoms = chosen[ok], geoms[ok]
    values = np.array([str(v) for v in layer.column(args.class_field)[chosen]], dtype=object)
    classes = class_table(values, layer, args.class_field)
    if len(classes) < 2:
        raise EoSslError("one_class", f"Field {args.class_field!r} has {len(classes)} class(es) among the exported "
                         "parcels; a classifier needs at least two.",
                         "Pick another class field or --status, or parcels with at least two classes.")
    if len(classes) > 254:
        raise EoSslError("too_many_classes", f"Field {args.class_field!r} has {len(classes)} classes; masks hold "
                         "at most 254 (uint8, 255 = ignore).", "Pick a coarser class field.")
    lookup = {c["value"]: c["id"] for c in classes}
    class_ids = np.array([lookup[v] for v in values], np.int64)
    rng = np.random.default_rng(args.seed)
    if args.split == "by-parcel":
        split = split_stratified(class_ids, fractions, rng)
        split_info: dict[str, Any] = {"method": "by-parcel (stratified by class)"}
    else:
        split, n_blocks = split_by_block(geoms, grid, args.block_size, fractions, rng)
        split_info = {"method": "by-block", "block_size_m": args.block_size, "blocks": n_blocks}
    split_info.update(fractions=list(fractions), seed=args.seed)
    ids = layer.ids(args.id_field)[chosen]
    channels, _ = plan_channels(source.sensors, args.dates)
    dtype = np.dtype(np.uint16) if all(s.dtype.kind in "ui" and s.dtype.itemsize <= 2 for s in source.sensors) \
        else np.dtype(np.float32)
    chips = place_chips(geoms, split, grid, size, args.max_chips_per_parcel)
    events.log(f"{len(chosen)} parcel(s), {len(classes)} classes, {len(chips)} chip(s) of {size} px, "
               f"{len(channels)} channel(s) ({dtype}), split {args.split}")

    tmp = output.start()
    try:
        with disk_errors(out):
            (tmp / "images").mkdir()
            (tmp / "masks").mkdir()
            (tmp / "splits").mkdir()
            records = _write_chips(tmp, events, chips, geoms, split, class_ids, ids, channels, classes, source, grid,
                                   size, dtype)
            summary = _write_meta(tmp, args, layer, records, classes, channels, source, grid, split_info, dtype,
                                  chosen, split, class_ids)
        events.check_cancel()  # the last safe point: a signal after it finds the dataset complete
        output.commit()
    except BaseException:
        output.abort()
        raise
    events.artifact("dataset", str(out))
    return {"out": str(out), **summary}


@dataclass
class ChipRecord:
    id: str
    row: int
    col: int
    split: str
    parcel: str
    parcels: list[str]
    counts: np.ndarray
    valid_frac: float
    majority: int


def _write_chips(tmp: Path, events: Events, chips: list[Chip], geoms: np.ndarray, split: np.ndarray,
                 class_ids: np.ndarray, ids: np.ndarray, channels: list[Channel], classes: list[dict],
                 source: StoreSource | RasterSource, grid: Grid, size: int, dtype: np.dtype) -> dict[str, Any]:
    crs = grid.rasterio_crs()
    tree = shapely.STRtree(geoms)
    area_order = np.argsort(-shapely.area(geoms), kind="stable")  # small parcels burnt last, on top
    rank = np.empty(len(geoms), np.int64)
    rank[area_order] = np.arange(len(geoms))
    colormap = {c["id"]: _rgb(c["colour"]) for c in classes}
    names_json = json.dumps([c["name"] for c in classes])
    bpp = sum(len(s.bands) * len(s.dates) * (s.dtype.itemsize + 1) for s in source.sensors) + 8
    side = int(min(2048, max(size, math.sqrt(GROUP_BUDGET_BYTES / bpp) - size)))
    groups = group_chips(chips, size, side)
    stats = BandStats(len(channels))
    band_keys = list(dict.fromkeys((c.sensor, c.band) for c in channels))
    band_stats = BandStats(len(band_keys))
    band_of = [band_keys.index((c.sensor, c.band)) for c in channels]
    records: list[ChipRecord] = []
    empty = 0
    train_any = any(ch.split == SPLITS["train"] for ch in chips)
    done = 0
    profile = {"driver": "GTiff", "width": size, "height": size, "crs": crs, "compress": "deflate",
               "interleave": "pixel" if len(channels) <= 16 else "band"}
    for (_, _), members in sorted(groups.items()):
        events.check_cancel()
        r0 = min(chips[k].row for k in members)
        c0 = min(chips[k].col for k in members)
        r1 = max(chips[k].row for k in members) + size
        c1 = max(chips[k].col for k in members) + size
        win = Window(c0, r0, c1 - c0, r1 - r0)
        data = source.read(win)
        for k in members:
            events.check_cancel()
            done += 1
            if done % 16 == 0 or done == len(chips):
                events.progress(done, len(chips), stage="export")
            ch = chips[k]
            sl = (slice(ch.row - r0, ch.row - r0 + size), slice(ch.col - c0, ch.col - c0 + size))
            x, v = assemble(channels, data, source.sensors, sl, dtype)
            any_valid = v.any(axis=0)
            transform = grid.transform @ Affine.translation(ch.col, ch.row)
            box = chip_box(grid, ch.row, ch.col, size)
            hits = tree.query(box, predicate="intersects")
            hits = hits[np.argsort(rank[hits])]
            hits = np.concatenate([hits[hits != ch.parcel], [ch.parcel]])  # the chip's own parcel on top
            pidx = np.full((size, size), -1, np.int32)
            if len(hits):
                pidx = rasterize(((geoms[i], int(i)) for i in hits), out_shape=(size, size), transform=transform,
                                 fill=-1, dtype="int32")
            inside = pidx >= 0
            same = np.zeros((size, size), bool)
            same[inside] = split[pidx[inside]] == ch.split
            keep = same & any_valid
            if not keep.any():  # no valid imagery under its parcel
                empty += 1
                continue
            mask = np.full((size, size), IGNORE, np.uint8)
            mask[keep] = class_ids[pidx[keep]]
            counts = np.bincount(mask[keep], minlength=len(classes))
            present = np.unique(pidx[keep])
            chip_id = f"{len(records):06d}"
            tags = {"CHIP_ID": chip_id, "SPLIT": SPLIT_NAMES[ch.split], "PARCEL_ID": str(ids[ch.parcel])}
            with rasterio.open(tmp / "images" / f"{chip_id}.tif", "w", **profile, count=len(channels), dtype=dtype,
                               transform=transform, nodata=0 if dtype.kind in "ui" else float("nan"),
                               predictor=2 if dtype.kind in "ui" else 3) as dst:
                dst.write(x)
                for b, chn in enumerate(channels, start=1):
                    dst.set_band_description(b, chn.name)
                    dst.update_tags(b, SENSOR=chn.sensor, BAND=chn.band, DATE=chn.date or "")
                dst.update_tags(**tags)
            with rasterio.open(tmp / "masks" / f"{chip_id}.tif", "w", **profile, count=1, dtype="uint8",
                               transform=transform, nodata=IGNORE) as dst:
                dst.write(mask, 1)
                dst.write_colormap(1, colormap)
                dst.set_band_description(1, "class")
                dst.update_tags(CLASS_NAMES=names_json, IGNORE_VALUE=str(IGNORE), **tags)
            if ch.split == SPLITS["train"] or not train_any:
                for b in range(len(channels)):
                    vals = x[b][v[b]]
                    stats.update(b, vals)
                    band_stats.update(band_of[b], vals)
            majority = int(np.argmax(counts)) if counts.sum() else -1
            records.append(ChipRecord(chip_id, ch.row, ch.col, SPLIT_NAMES[ch.split], str(ids[ch.parcel]),
                                    [str(ids[i]) for i in present], counts, float(v.all(axis=0).mean()), majority))
    if empty:
        events.warning("empty_chips", f"{empty} chip(s) had no valid imagery under their parcel and were left out.")
    return {"records": records, "stats": stats.result([c.name for c in channels]),
            "band_stats": band_stats.result([f"{s}:{b}" for s, b in band_keys]), "band_keys": band_keys,
            "stats_from": "train chips" if train_any else "all chips"}


def _rgb(colour: str) -> tuple[int, int, int, int]:
    c = colour.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16), 255


def _write_meta(tmp: Path, args: argparse.Namespace, layer: ParcelLayer, written: dict[str, Any],
                classes: list[dict], channels: list[Channel], source: StoreSource | RasterSource, grid: Grid,
                split_info: dict[str, Any], dtype: np.dtype, chosen: np.ndarray, split: np.ndarray,
                class_ids: np.ndarray) -> dict[str, Any]:
    records: list[ChipRecord] = written["records"]
    size = args.chip
    # index.gpkg
    boxes = np.array([chip_box(grid, r.row, r.col, size) for r in records], dtype=object)
    names = [c["name"] for c in classes]
    cols = {
        "chip_id": np.array([r.id for r in records], dtype=object),
        "image": np.array([f"images/{r.id}.tif" for r in records], dtype=object),
        "mask": np.array([f"masks/{r.id}.tif" for r in records], dtype=object),
        "split": np.array([r.split for r in records], dtype=object),
        "class_id": np.array([r.majority if r.majority >= 0 else np.nan for r in records], np.float64),
        "class_name": np.array([names[r.majority] if r.majority >= 0 else None for r in records], dtype=object),
        "parcel_id": np.array([r.parcel for r in records], dtype=object),
        "parcel_ids": np.array([",".join(r.parcels) for r in records], dtype=object),
        "n_parcels": np.array([len(r.parcels) for r in records], np.int64),
        "n_labelled": np.array([int(r.counts.sum()) for r in records], np.int64),
        "class_counts": np.array([json.dumps({names[i]: int(n) for i, n in enumerate(r.counts) if n})
                                  for r in records], dtype=object),
        "valid_frac": np.array([round(r.valid_frac, 4) for r in records], np.float64),
        "row": np.array([r.row for r in records], np.int64),
        "col": np.array([r.col for r in records], np.int64),
    }
    dtypes = ["object", "object", "object", "object", "int64", "object", "object", "object", "int64", "int64",
              "object", "float64", "int64", "int64"]
    write_gpkg(tmp / "index.gpkg", "chips", grid.crs, shapely.to_wkb(boxes), list(cols), list(cols.values()),
               dtypes, "Polygon", {"eo_ssl_dataset": json.dumps({"format": FORMAT, "version": VERSION})})
    for name in ("train", "val", "test"):
        (tmp / "splits" / f"{name}.txt").write_text("".join(f"{r.id}\n" for r in records if r.split == name))

    # normalisation per band (over dates) in the model package's shape, and per channel
    normalization: dict[str, dict[str, Any]] = {}
    for key, st in zip(written["band_keys"], written["band_stats"].values()):
        normalization.setdefault(key[0], {})[key[1]] = st
    chip_split = np.array([r.split for r in records])
    counts = np.array([r.counts for r in records]) if records else np.zeros((0, len(classes)), np.int64)
    for c in classes:
        c["parcels"] = int((class_ids == c["id"]).sum())
        c["pixels"] = int(counts[:, c["id"]].sum()) if len(counts) else 0
        c["chips"] = int(sum(r.majority == c["id"] for r in records))
    years = sorted({d[:4] for s in source.sensors for d in s.dates if d})
    sentinel = SENTINEL_ATTRIBUTION.format(years=", ".join(years) if years else "").replace("  ", " ")
    label_info = None
    if METADATA_KEY in layer.metadata:
        try:
            label_info = json.loads(layer.metadata[METADATA_KEY])
        except json.JSONDecodeError:
            label_info = None
    attribution = {"imagery": sentinel, "labels": args.attribution or ["not given: add --attribution 'licence and "
                                                                        "source of the parcels'"]}
    split_info["chips"] = {n: int((chip_split == n).sum()) for n in ("train", "val", "test")}
    split_info["parcels"] = {n: int((split == SPLITS[n]).sum()) for n in ("train", "val", "test")}
    doc = {
        "format": FORMAT, "version": VERSION,
        "task": {"segmentation": "masks/<id>.tif: class id per pixel, 255 = ignore",
                 "classification": "class_id of a chip = the majority class of its mask"},
        "chip_size": size, "count": len(records),
        "image": {"dtype": str(dtype), "nodata": 0 if dtype.kind in "ui" else "nan", "channels": [
            {"index": i + 1, "name": c.name, "sensor": c.sensor, "band": c.band, "date": c.date}
            for i, c in enumerate(channels)], "layout": "images/<id>.tif, one band per channel, in this order"},
        "mask": {"dtype": "uint8", "ignore_index": IGNORE, "layout": "masks/<id>.tif, same grid as the image",
                 "rule": "pixel centre in the parcel; where parcels overlap, the chip's own parcel is drawn on top, "
                         "then smaller parcels on top of larger ones",
                 "ignored": "outside exported parcels, parcels of another split, pixels without valid imagery"},
        "sensors": {s.name: {"bands": s.bands, "dates": s.dates, "dtype": str(s.dtype), "scale": s.scale}
                    for s in source.sensors},
        "dates": args.dates,
        "classes": classes,
        "class_field": args.class_field,
        "grid": grid.to_dict(),
        "normalization": normalization,
        "channel_stats": written["stats"],
        "normalization_from": written["stats_from"] + " (valid pixels)",
        "split": split_info,
        "chips": [{"id": r.id, "image": f"images/{r.id}.tif", "mask": f"masks/{r.id}.tif", "split": r.split,
                   "class_id": r.majority, "row": r.row, "col": r.col, "parcel": r.parcel, "parcels": r.parcels}
                  for r in records],
        "index": "index.gpkg (layer chips)",
        "provenance": {
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "code_version": __version__,
            "command": sys.argv, "parcels": str(Path(args.parcels).resolve()), "parcels_layer": layer.layer,
            "id_field": args.id_field, "status": args.status or ("labelled" if "status" in layer.fields else None),
            "imagery": source.inputs, "label_parcels": label_info,
            "grid_crs": CRS.from_user_input(grid.crs).name,
        },
        "licence": {"imagery": sentinel, "labels": attribution["labels"],
                    "note": "Keep this attribution with any copy of the dataset."},
    }
    (tmp / "dataset.json").write_text(json.dumps(doc, indent=1, default=str))
    lines = ["# Attribution", "", f"- Imagery: {sentinel}"] + [f"- Labels: {a}" for a in attribution["labels"]]
    if label_info:
        lines.append(f"- Labels derived with eo-ssl label-parcels from the map {label_info.get('map')}.")
    (tmp / "ATTRIBUTION.md").write_text("\n".join(lines) + "\n")
    return {"chips": len(records), "classes": len(classes), "channels": len(channels),
            "split": split_info["chips"], "parcels": int(len(chosen))}
