"""``eo-ssl similar``: "find similar" on a feature raster (an embedding: AlphaEarth, TESSERA, eo-ssl embed, ...).

Every pixel's cosine similarity to the mean embedding of the example pixels (the pixels whose centres the example
polygons hold; a point: the pixel it falls in; a polygon too small to hold a centre: every pixel it touches), one band
per class of ``--class-field`` (or one band for all the examples). The mean is the mean of the examples' unit vectors,
itself scaled to unit length (AlphaEarth's vectors are unit length already; others are normalised here), so the
output is in -1..1 whatever the embedding's scale.

The feature rasters are read onto the grid as ``prepare --features`` reads them (presets, reprojection, bottom-up
files) in full-width strips, so memory is bounded by a strip; the result is a COG (float32, nodata NaN, one band per
class named after it) with a pseudo-colour ``.qml`` sidecar over the 2nd..98th percentile of the first band.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from backend import options
from backend.data.aoi import read_vector, reproject_geometry
from backend.data.prepare import Inputs, resolve_inputs
from backend.data.scenes import group_by_date
from backend.data.warp import GridReader, read_stack
from backend.errors import EoSslError
from backend.events import Events
from backend.outputs import Output, abort_on_failure

#: rows of the grid read at once (memory: rows x width x bands x 4 bytes)
STRIP_PIXELS = 2_000_000


def add_arguments(p: argparse.ArgumentParser) -> None:
    options.add_arguments(p, "similar")


def _unit(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` (..., C) scaled to unit length (0 stays 0)."""
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(n > 0, n, 1.0)


def example_classes(path: str, layer: str | None, class_field: str | None, inputs: Inputs
                    ) -> tuple[list[str], list[Any], np.ndarray]:
    """(class names, geometries in the grid CRS, class index per geometry) of the example features."""
    geoms, columns, crs, _ = read_vector(path, layer, option="--examples")
    keep = np.array([g is not None and not g.is_empty for g in geoms], bool)
    if class_field:
        if class_field not in columns:
            raise EoSslError("class_field_missing", f"--class-field {class_field!r} is not an attribute of {path}.",
                             f"Its attributes: {', '.join(columns) or 'none'}.")
        values = np.array(["" if v is None else str(v) for v in columns[class_field]], object)
        keep &= values != ""
        names = sorted(set(values[keep].tolist()))
        index = np.array([names.index(v) if k else -1 for v, k in zip(values, keep)], np.int64)
    else:
        names, index = ["similarity"], np.where(keep, 0, -1)
    if not keep.any():
        raise EoSslError("no_examples", f"{path} holds no example geometry" + (f" with a {class_field}" if class_field
                         else "") + ".", "Draw or select at least one polygon or point.")
    grid_geoms = [reproject_geometry(g, crs, inputs.grid.crs) if k else None for g, k in zip(geoms, keep)]
    return names, grid_geoms, index


def example_means(inputs: Inputs, names: list[str], geoms: list[Any], index: np.ndarray, events: Events
                  ) -> tuple[np.ndarray, list[int]]:
    """(K, C) unit-length mean embedding per class and the pixels each rests on, read over the window that holds
    the examples."""
    import shapely
    from rasterio.features import rasterize
    from rasterio.windows import Window, from_bounds

    grid = inputs.grid
    union = shapely.union_all([g for g in geoms if g is not None])
    minx, miny, maxx, maxy = union.bounds
    r = grid.resolution
    win = from_bounds(minx - r, miny - r, maxx + r, maxy + r, grid.transform).round_offsets().round_lengths()
    r0, c0 = max(0, int(win.row_off)), max(0, int(win.col_off))
    r1 = min(grid.height, int(win.row_off + win.height) + 1)
    c1 = min(grid.width, int(win.col_off + win.width) + 1)
    if r1 <= r0 or c1 <= c0:
        raise EoSslError("examples_outside", "The examples lie outside the feature rasters (or the AOI).",
                         "Draw the examples where the feature rasters have pixels.")
    win = Window(c0, r0, c1 - c0, r1 - r0)
    shape = (r1 - r0, c1 - c0)
    transform = grid.window_transform(win)
    label = np.full(shape, -1, np.int64)
    for k in range(len(names)):  # centres first, then every pixel touched for a class whose examples hold none
        shapes = [(g, 1) for g, i in zip(geoms, index) if i == k]
        for touched in (False, True):
            burnt = rasterize(shapes, out_shape=shape, transform=transform, all_touched=touched, fill=0,
                              dtype="uint8").astype(bool)
            if burnt.any():
                break
        label[burnt & (label < 0)] = k
    with GridReader(grid) as reader:
        block, valid = read_stack(reader, group_by_date(inputs.features), inputs.features_bands, win,
                                  np.dtype(np.float32), np.ones(shape, bool))
    x, ok = block[:, :, 0, :], valid[:, :, 0].astype(bool)
    means, counts, kept = [], [], []
    for k, name in enumerate(names):
        sel = (label == k) & ok
        if not sel.any():
            events.warning("class_without_pixels", f"The examples of {name!r} cover no valid pixel of the feature "
                           "rasters (outside them, or on nodata): the class gets no band.")
            continue
        means.append(_unit(_unit(x[sel]).mean(0)))
        counts.append(int(sel.sum()))
        kept.append(name)
    if not kept:
        raise EoSslError("examples_without_pixels", "The examples cover no valid pixel of the feature rasters "
                         "(outside them, or on nodata).", "Draw the examples where the feature rasters have values.")
    events.log("examples: " + ", ".join(f"{n} ({c} px)" for n, c in zip(kept, counts)))
    names[:] = kept
    return np.stack(means).astype(np.float32), counts


def run(args: argparse.Namespace, events: Events) -> dict[str, Any]:
    import rasterio
    from rasterio.features import geometry_mask
    from rasterio.windows import Window

    from backend.predict import styles
    from backend.predict.writer import RasterSink

    t0 = time.monotonic()
    out = Path(args.out)
    if out.suffix.lower() not in (".tif", ".tiff"):
        raise EoSslError("bad_output", f"--out {out} is not a .tif path.", "Give a path ending in .tif.")
    output = Output(out, kind="similarity", folder=False, replace=True,
                    inputs=options.paths("similar", args, "input")).check().log_swept(events.log)
    for name in ("s2", "s1", "s2_bands", "s1_bands", "poi"):  # resolve_inputs' other inputs: none here
        setattr(args, name, None)
    if args.resolution is None:  # the feature raster's own pixels
        from backend.data.feature_presets import discover_features

        args.resolution = float(discover_features(args.features, args.features_preset)[0].resolution)
    inputs = resolve_inputs(args, events)
    grid = inputs.grid
    names, geoms, index = example_classes(args.examples, args.examples_layer, args.class_field, inputs)
    means, counts = example_means(inputs, names, geoms, index, events)
    k = len(names)
    tags = {"EO_SSL_SIMILAR": json.dumps({
        "examples": str(Path(args.examples).resolve()), "class_field": args.class_field,
        "classes": [{"band": i + 1, "name": n, "pixels": c} for i, (n, c) in enumerate(zip(names, counts))],
        "features": [str(f) for s in inputs.features for f in s.files],
        "preset": inputs.features[0].extra["preset"], "code": "eo-ssl similar"})}
    rows = max(1, min(grid.height, STRIP_PIXELS // max(grid.width, 1)))
    sample: list[np.ndarray] = []
    rng = np.random.default_rng(0)
    groups = group_by_date(inputs.features)
    sinks: list[RasterSink] = []

    def abort_sinks() -> None:
        for snk in sinks:
            snk.abort()

    with abort_on_failure(out, abort_sinks, output.abort), GridReader(grid) as reader:
        sinks.append(RasterSink(out, grid, "float32", float("nan"), tags=tags, count=k, descriptions=names))
        n_strips = (grid.height + rows - 1) // rows
        for i, r0 in enumerate(range(0, grid.height, rows), start=1):
            events.check_cancel()
            win = Window(0, r0, grid.width, min(rows, grid.height - r0))
            h = int(win.height)
            inside = geometry_mask([inputs.aoi_geom], out_shape=(h, grid.width), transform=grid.window_transform(win),
                                   invert=True)
            block, valid = read_stack(reader, groups, inputs.features_bands, win, np.dtype(np.float32), inside)
            sim = np.einsum("hwc,kc->khw", _unit(block[:, :, 0, :]), means)
            sim[:, ~valid[:, :, 0].astype(bool)] = np.nan
            sinks[0].write_rows(sim.astype(np.float32))
            first = sim[0][np.isfinite(sim[0])]
            if first.size:
                sample.append(rng.choice(first, size=min(first.size, 20000), replace=False))
            events.progress(i, n_strips, stage="similar")
        events.check_cancel()
        if not sample:
            raise EoSslError("all_nodata", "Every pixel of the feature rasters inside the AOI is nodata.",
                             "Pick another AOI or feature rasters.")
        output.commit(sinks[0].finish(resampling="AVERAGE"))
    lo, hi = np.percentile(np.concatenate(sample), [2, 98])
    styles.confidence_qml(out.with_suffix(".qml"), 1, float(lo), float(max(hi, lo + 1e-3)))
    with rasterio.open(out) as src:
        assert src.count == k
    elapsed = time.monotonic() - t0
    events.artifact("similarity", str(out))
    area_km2 = grid.width * grid.height * grid.resolution ** 2 / 1e6
    return {"out": str(out), "bands": k, "classes": names, "example_pixels": dict(zip(names, counts)),
            "grid": f"{grid.width} x {grid.height} px at {grid.resolution:g} m", "area_km2": round(area_km2, 3),
            "style_range": [round(float(lo), 4), round(float(hi), 4)], "elapsed_s": round(elapsed, 2)}
