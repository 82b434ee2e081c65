"""EuroSAT-style chip folders (``DIR/<Class>/*.tif``) as a chip store of kind ``chips``.

Every chip must have the same size and band list. Bands are named by the files (descriptions / tags) or by
``band_names``; EuroSAT-MS files carry no names, so their 13-band file order (B01..B12 with B8A *last*, see
:data:`backend.data.bands.EUROSAT_MS_ORDER`) is the default for 13-band chips, and any other band count must be
named.
A chip folder written by ``eo-ssl export-dataset`` (with ``dataset.json``) is read the same way, with its class
names, channel names and split from ``dataset.json``; a chip's label is the majority class of its mask, and the
masks are kept as ``chip_masks.npy`` (N, H, W) int16, -1 = ignore, for segmentation.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.errors import RasterioIOError

from backend import __version__
from backend.data.bands import EUROSAT_MS_ORDER, canonical_s2
from backend.data.chipstore import SPLITS, BandStats, ChipStoreWriter, npy_bytes
from backend.data.labels import class_colour, split_stratified
from backend.data.scenes import RASTER_SUFFIXES
from backend.disk import check_free_space, disk_full_error, is_disk_full
from backend.errors import EoSslError
from backend.events import Events


def find_chips(root: Path) -> tuple[list[str], list[tuple[Path, int]]]:
    """Class names (sorted folder names) and (file, class id) pairs."""
    if not root.is_dir():
        raise EoSslError("input_not_found", f"Chip folder {root} does not exist.", "Give DIR with DIR/<Class>/*.tif.")
    classes = sorted(d.name for d in root.iterdir()
                     if d.is_dir() and any(f.suffix.lower() in RASTER_SUFFIXES for f in d.iterdir()))
    if len(classes) < 2:
        raise EoSslError("one_class", f"{root} holds {len(classes)} class folder(s) with rasters; need at least 2.",
                         "Lay chips out as DIR/<Class>/*.tif, one folder per class.")
    items = [(f, i) for i, c in enumerate(classes) for f in sorted((root / c).iterdir())
             if f.suffix.lower() in RASTER_SUFFIXES]
    return classes, items


def find_exported(root: Path) -> dict[str, Any] | None:
    """The ``dataset.json`` of a folder written by ``eo-ssl export-dataset``, or None for other chip folders."""
    f = root / "dataset.json"
    if not f.is_file():
        return None
    doc = json.loads(f.read_text())
    return doc if doc.get("format") == "eo-ssl-dataset" else None


def _mask_label(path: Path, ignore: int) -> tuple[np.ndarray, int]:
    """The mask (int16, -1 = ignore) and its majority class (-1 when nothing is labelled)."""
    with rasterio.open(path) as src:
        mask = src.read(1).astype(np.int16)
    mask[mask == ignore] = -1
    counts = np.bincount(mask[mask >= 0].ravel())
    return mask, int(counts.argmax()) if counts.sum() else -1


def _chip_band_names(src: rasterio.DatasetReader, given: list[str] | None, path: Path) -> list[str]:
    if given:
        if len(given) != src.count:
            raise EoSslError("band_count_mismatch", f"{path} has {src.count} bands but {len(given)} names were given.",
                             "Give one name per band with --chip-bands.")
        return given
    desc = [canonical_s2(d) if d else None for d in src.descriptions]
    if all(desc):
        return desc  # type: ignore[return-value]
    if src.count == len(EUROSAT_MS_ORDER):
        return list(EUROSAT_MS_ORDER)
    raise EoSslError("unknown_bands", f"{path} has {src.count} unnamed bands; only 13-band chips default to the "
                     "EuroSAT order.", "Give the band order with --chip-bands B02,B03,...")


def prepare_chips(root: str | Path, out: str | Path, events: Events, band_names: list[str] | None = None,
                  overwrite: bool = False, seed: int = 0,
                  fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
                  inputs: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    root = Path(root)
    exported = find_exported(root)
    masks: list[np.ndarray] = []
    given_split = None
    if exported:
        classes = [c["name"] for c in exported["classes"]]
        band_names = band_names or [c["name"] for c in exported["image"]["channels"]]
        items, splits = [], []
        for c in exported["chips"]:
            mask, label = _mask_label(root / c["mask"], int(exported["mask"]["ignore_index"]))
            if label >= 0:
                items.append((root / c["image"], label))
                splits.append(SPLITS[c["split"]])
                masks.append(mask)
        if not items:
            raise EoSslError("no_samples", f"No chip of {root} has a labelled pixel.", "Export the dataset again.")
        given_split = np.array(splits, np.uint8)
    else:
        classes, items = find_chips(root)
    with rasterio.open(items[0][0]) as src:
        names = _chip_band_names(src, band_names, items[0][0])
        size, dtype, crs0 = (src.height, src.width), np.dtype(src.dtypes[0]), src.crs
        nodata = src.nodata
    writer = ChipStoreWriter(out, overwrite, inputs)
    writer.output.log_swept(events.log)
    try:
        shape = (len(items), len(names), *size)
        check_free_space(out, npy_bytes(shape, dtype) + 3 * len(items) * (1 + int(np.prod(size))), "The chip store")
        chips = writer.create("chips", shape, dtype)  # after the check: not even a header on a disk too small
        labels = np.array([c for _, c in items], np.int16)
        stats = BandStats(len(names))
        for i, (path, _) in enumerate(items):
            events.check_cancel()
            try:
                with rasterio.open(path) as src:
                    if (src.height, src.width) != size or src.count != len(names):
                        raise EoSslError("chip_mismatch", f"{path} is {src.count} x {src.height} x {src.width}; "
                                         f"the first chip is {len(names)} x {size[0]} x {size[1]}.",
                                         "All chips must have the same bands and size.")
                    data = src.read()
            except RasterioIOError as exc:
                raise EoSslError("corrupt_file", f"Cannot read chip {path}: {exc}",
                                 "Remove or replace the damaged file.") from exc
            valid = np.isfinite(data) if data.dtype.kind == "f" else np.ones(data.shape, bool)
            if nodata is not None and not math.isnan(nodata):
                valid &= data != nodata
            chips[i] = np.where(valid, data, 0)  # nodata (NaN in float chips) is stored as 0, left out of the stats
            for b in range(len(names)):
                stats.update(b, data[b][valid[b]])
            if i % 32 == 0 or i == len(items) - 1:
                events.progress(i + 1, len(items), stage="chips")
        if given_split is not None:  # keep the export's split: it is by parcel or block, never by pixel
            split = given_split
            writer.create("chip_masks", (len(masks), *size), np.int16)[:] = np.stack(masks)
        else:
            split = split_stratified(labels, fractions, np.random.default_rng(seed))
        writer.create("chip_labels", labels.shape, np.int16)[:] = labels
        writer.create("chip_split", split.shape, np.uint8)[:] = split
        colours = {c["name"]: c.get("colour") for c in exported["classes"]} if exported else {}
        manifest = {
            "kind": "chips",
            "chips": {"count": len(items), "size": list(size), "root": str(root),
                      "paths": [str(p.relative_to(root)) for p, _ in items], "crs_of_first": str(crs0),
                      "file": "chips.npy", "labels_file": "chip_labels.npy", "split_file": "chip_split.npy"},
            "sensors": {"s2": {"bands": names, "dates": [None], "dtype": str(dtype), "file": "chips.npy",
                               "stats": stats.result(names), "band_order_source":
                               "given" if band_names else "file or EuroSAT default"}},
            "labels": {"class_field": exported["class_field"] if exported else "folder", "ignore_index": -1,
                       "classes": [{"id": i, "name": c, "colour": colours.get(c) or class_colour(c, i),
                                    "chips": int((labels == i).sum())} for i, c in enumerate(classes)],
                       "split": {"method": "from dataset.json: " + exported["split"]["method"] if exported else
                                 "by-chip (stratified)", "seed": seed, "fractions": list(fractions),
                                 "counts": {k: int((split == v).sum()) for k, v in SPLITS.items() if v}}},
            "provenance": {"created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                           "code_version": __version__, "inputs": [str(root)]},
        }
        if exported:  # which sensor/band/date each channel is, and the masks for segmentation
            manifest["chips"].update(channels=exported["image"]["channels"], masks_file="chip_masks.npy",
                                     dataset=exported["format"])
        writer.commit(manifest)
    except BaseException as exc:
        needed = writer.nbytes()
        writer.abort()
        if is_disk_full(exc):
            raise disk_full_error(out, needed) from exc
        raise
    events.artifact("chipstore", str(out))
    return {"out": str(out), "chips": len(items), "classes": len(classes), "bands": ",".join(names),
            "size": f"{size[0]} x {size[1]}", "split": manifest["labels"]["split"]["counts"]}
