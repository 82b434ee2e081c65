"""``eo-ssl label-parcels``: label every parcel of a vector layer from a land-cover map (and its confidence).

Per parcel: the majority class (id and name), the share of its valid pixels in that class, the mean confidence,
the entropy of its class distribution, its pixel counts, and a ``status``:

``labelled``          enough pixels, a clear majority (``--min-fraction``) and, with ``--confidence``, a mean
                      confidence of at least ``--min-confidence``
``uncertain``         a majority class, but below one of those thresholds
``too_small``         fewer than ``--min-pixels`` valid pixels
``no_data``           inside the map, but every pixel is nodata (outside the predicted AOI, clouds...)
``outside_raster``    no pixel of the map under the parcel
``invalid_geometry``  an invalid polygon that could not be repaired (repaired ones are used, see ``geom_note``)
``no_geometry``       an empty or missing geometry
``not_polygon``       a point or line feature

Every input feature is written to the output, with all its attributes, in input order; the input is never
modified. The output is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import shapely
from pyproj import CRS
from rasterio.errors import RasterioIOError

from backend import __version__, options
from backend.errors import EoSslError
from backend.events import Events
from backend.outputs import disk_errors
from backend.parcels.map_legend import describe, map_classes
from backend.parcels.vector import check_gpkg_out, read_parcels, reproject_many, write_gpkg
from backend.parcels.zonal import footprint, zonal_classes

STATUSES = ("labelled", "uncertain", "too_small", "no_data", "outside_raster", "invalid_geometry", "no_geometry",
            "not_polygon")
#: The fields label-parcels adds (an input field of the same name is replaced, with a warning).
OUTPUT_FIELDS = ("class_id", "class_name", "class_frac", "confidence", "entropy", "n_valid", "n_pixels", "in_raster",
                 "pixel_rule", "status", "geom_note", "src_fid")
#: Layer metadata key holding what label-parcels did (classes with colours, thresholds, the map): export-dataset
#: reads the class colours from it.
METADATA_KEY = "eo_ssl_label_parcels"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options, declared in :mod:`backend.options`."""
    options.add_arguments(p, "label-parcels")


def _open_map(path: Path, band: int) -> CRS:
    if not path.exists():
        raise EoSslError("input_not_found", f"Map {path} does not exist.", "Check the --map path.")
    try:
        with rasterio.open(path) as src:
            if not 1 <= band <= src.count:
                raise EoSslError("bad_band", f"The map {path} has {src.count} band(s); --map-band {band} is not one.",
                                 f"Use --map-band 1..{src.count}.")
            if src.crs is None:
                raise EoSslError("no_crs", f"The map {path} has no CRS.",
                                 "Assign one (QGIS: Assign Projection; gdal_edit.py -a_srs EPSG:...).")
            return CRS.from_user_input(src.crs.to_wkt())
    except RasterioIOError as exc:
        raise EoSslError("corrupt_file", f"Cannot read the map {path}: {exc}",
                         "Give a readable GeoTIFF of class ids.") from exc


def status_of(problem: np.ndarray, outside: np.ndarray, n_pixels: np.ndarray, n_valid: np.ndarray,
              fraction: np.ndarray, confidence: np.ndarray | None, min_pixels: int, min_fraction: float,
              min_confidence: float) -> np.ndarray:
    """The status of each parcel from its counts and the thresholds (first matching rule wins)."""
    n = len(problem)
    status = np.full(n, "labelled", dtype=object)
    unsure = np.nan_to_num(fraction, nan=0.0) < min_fraction
    if confidence is not None:
        unsure |= ~(np.nan_to_num(confidence, nan=-1.0) >= min_confidence)
    status[unsure] = "uncertain"
    status[n_valid < min_pixels] = "too_small"
    status[n_valid == 0] = "no_data"
    status[(n_pixels == 0) | outside] = "outside_raster"
    has_problem = problem != ""
    status[has_problem] = problem[has_problem]
    return status


def run(args: argparse.Namespace, events: Events) -> dict[str, Any]:
    t0 = time.monotonic()
    map_path, parcels_path = Path(args.map), Path(args.parcels)
    output = check_gpkg_out(args.out, args.overwrite, options.paths("label-parcels", args, "input"))
    output.log_swept(events.log)
    out = output.path
    map_crs = _open_map(map_path, args.map_band)

    layer = read_parcels(parcels_path, args.parcels_layer, args.id_field, warn=events.warning)
    n = len(layer)
    polygons = layer.problem == ""
    if not polygons.any() and (layer.problem == "not_polygon").any():  # as prepare and export-dataset say it
        raise EoSslError("not_polygon", f"The parcels of {parcels_path} are not polygons ({layer.geometry_type}): "
                         "a parcel's label is the majority class of the map's pixels inside it.",
                         "Give a polygon layer (in QGIS: Buffer points, or digitise the parcels).")
    if args.id_field:
        ids = layer.column(args.id_field)
        uniq = len({str(v) for v in ids})
        if uniq < n:
            events.warning("id_not_unique", f"--id-field {args.id_field!r} has {n - uniq} repeated value(s); "
                           "parcels are still labelled one by one, but ids will not tell them apart.")
    events.log(f"Parcels: {n} feature(s) of {parcels_path} ({layer.crs.name}); map {map_path} ({map_crs.name})")
    if layer.crs != map_crs:
        events.log(f"Reprojecting the parcels from {layer.crs.name} to {map_crs.name}")
    geoms = reproject_many(layer.geoms, layer.crs, map_crs)
    lost = np.array([g is None for g in geoms]) & (layer.problem == "")

    def progress(step: int, total: int) -> None:
        events.check_cancel()
        if step == total or step % 8 == 0:
            events.progress(step, total, stage="label")

    z = zonal_classes(map_path, geoms, band=args.map_band, confidence=args.confidence,
                      confidence_scale=args.confidence_scale, window=args.window, progress=progress)

    with rasterio.open(map_path) as src:
        table, class_source, colormap = map_classes(src, map_path, args.map_band, args.classes)
        fp = footprint(src)
    in_raster = _inside_share(geoms, fp)
    status = status_of(layer.problem, lost, z.n_pixels, z.n_valid, z.fraction,
                       z.confidence if args.confidence else None, args.min_pixels, args.min_fraction,
                       args.min_confidence)
    classes = {int(v): describe(table, int(v), colormap, i) for i, v in enumerate(z.class_values)}
    names = np.array([classes[int(c)]["name"] if c >= 0 else None for c in z.majority], dtype=object)
    counts = {s: int((status == s).sum()) for s in STATUSES if (status == s).any()}
    if polygons.any() and counts.get("outside_raster", 0) == int(polygons.sum()):
        events.warning("parcels_outside_map", f"No parcel overlaps the map {map_path}: check that both cover the "
                       f"same place (parcels: {layer.crs.name}, map: {map_crs.name}).")
    if z.fallback_parcels:
        events.log(f"{z.fallback_parcels} parcel(s) hold no pixel centre; counted with the all-touched rule "
                   "(pixel_rule = all_touched)")
    if z.overlap_layers > 1:
        events.log(f"Some parcels overlap: counted in {z.overlap_layers} layers so each gets all its pixels")

    fields, columns, dtypes = _output_columns(layer, events, {
        "class_id": (np.where(z.majority >= 0, z.majority, np.nan), "int64"),
        "class_name": (names, "object"),
        "class_frac": (np.round(z.fraction, 6), "float64"),
        "confidence": (np.round(z.confidence, 6) if args.confidence else np.full(n, np.nan), "float64"),
        "entropy": (np.round(z.entropy, 6), "float64"),
        "n_valid": (z.n_valid, "int64"),
        "n_pixels": (z.n_pixels, "int64"),
        "in_raster": (np.round(in_raster, 6), "float64"),
        "pixel_rule": (np.where(z.rule == "", None, z.rule), "object"),
        "status": (status, "object"),
        "geom_note": (np.where(layer.note == "", None, layer.note), "object"),
        "src_fid": (layer.fids.astype(np.int64), "int64"),
    })
    wkb = layer.wkb.copy()
    repaired = np.nonzero(np.char.startswith(layer.note.astype(str), "repaired"))[0]
    if len(repaired):
        wkb[repaired] = shapely.to_wkb(np.asarray(list(layer.geoms[repaired]), dtype=object))
    gtype = layer.geometry_type
    if gtype == "Polygon" and len(repaired) and any(layer.geoms[i].geom_type == "MultiPolygon" for i in repaired):
        gtype = "MultiPolygon"
        events.log("Repairs turned some polygons into multipolygons: the output layer is MultiPolygon")
    fids = layer.fids if (len(layer.fids) and layer.fids.min() >= 1 and "fid" not in fields
                          and len(np.unique(layer.fids)) == n) else None
    info = {
        "tool": "eo-ssl label-parcels", "code_version": __version__,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "command": sys.argv,
        "map": str(map_path.resolve()), "map_band": args.map_band, "map_crs": map_crs.to_wkt(),
        "confidence": str(Path(args.confidence).resolve()) if args.confidence else None,
        "parcels": str(parcels_path.resolve()), "parcels_layer": layer.layer, "id_field": args.id_field,
        "class_names_from": class_source,
        "classes": [dict(classes[int(v)], pixels=int(px), parcels=int(pp))
                    for v, px, pp in zip(z.class_values, z.class_pixels, z.class_parcels)],
        "thresholds": {"min_pixels": args.min_pixels, "min_fraction": args.min_fraction,
                       "min_confidence": args.min_confidence if args.confidence else None},
        "status_counts": counts, "rule": "pixel centre; all-touched for parcels holding no pixel centre",
    }
    metadata = {k: str(v) for k, v in layer.metadata.items()}
    metadata[METADATA_KEY] = json.dumps(info)
    try:
        with disk_errors(out):
            write_gpkg(output.start(), layer.layer or out.stem, layer.crs, wkb, fields, columns, dtypes, gtype,
                       metadata, fids)
        events.check_cancel()  # the last safe point: a signal after it finds the layer complete
        output.commit()
    except BaseException:
        output.abort()
        raise
    events.artifact("vector", str(out), layer=layer.layer or out.stem)
    elapsed = time.monotonic() - t0
    events.log(f"Labelled {n} parcel(s) in {elapsed:.1f} s: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return {"out": str(out), "parcels": n, **counts, "classes": len(z.class_values),
            "class_names_from": class_source, "blocks_read": z.blocks_read,
            "parcels_per_s": round(n / max(elapsed, 1e-9), 1)}


def _inside_share(geoms: np.ndarray, fp: shapely.Geometry) -> np.ndarray:
    """Share of each parcel's area inside the raster (0 for parcels without a polygon)."""
    share = np.zeros(len(geoms))
    present = np.nonzero([g is not None for g in geoms])[0]
    if not len(present):
        return share
    g = np.asarray(list(geoms[present]), dtype=object)
    shapely.prepare(fp)
    inside = shapely.contains_properly(fp, g)
    share[present[inside]] = 1.0
    rest = ~inside
    if rest.any():
        area = shapely.area(g[rest])
        part = shapely.area(shapely.intersection(g[rest], fp))
        share[present[rest]] = np.divide(part, area, out=np.zeros_like(part), where=area > 0)
    return share


def _output_columns(layer: Any, events: Events, ours: dict[str, tuple[np.ndarray, str]]
                    ) -> tuple[list[str], list[np.ndarray], list[str]]:
    """The input's fields (minus any we replace), then ours."""
    clash = [f for f in layer.fields if f in ours]
    if clash:
        events.warning("fields_replaced", f"The parcels already have field(s) {', '.join(clash)}; the output holds "
                       "the new values (the input file is unchanged).")
    fields = [f for f in layer.fields if f not in ours]
    columns = [layer.column(f) for f in fields]
    dtypes = [layer.dtypes[layer.fields.index(f)] for f in fields]
    for name, (values, dtype) in ours.items():
        fields.append(name)
        columns.append(values)
        dtypes.append(dtype)
    return fields, columns, dtypes
