"""Area of interest (a polygon, any CRS) and period of interest (a date range)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from pyproj import CRS, Transformer
from shapely.geometry.base import BaseGeometry

from backend.errors import EoSslError


@dataclass(frozen=True)
class AOI:
    """A (multi)polygon and its CRS. ``source`` says where it came from (a file or a bbox)."""

    geometry: BaseGeometry
    crs: CRS
    source: str

    def to_crs(self, crs: CRS | str) -> AOI:
        target = CRS.from_user_input(crs)
        if target == self.crs:
            return self
        return AOI(reproject_geometry(self.geometry, self.crs, target), target, self.source)


def reproject_geometry(geom: BaseGeometry, src: CRS, dst: CRS) -> BaseGeometry:
    """Reproject with densified edges, so long straight edges stay close to their true curved path."""
    if CRS.from_user_input(src) == CRS.from_user_input(dst):
        return geom
    tr = Transformer.from_crs(src, dst, always_xy=True)
    dense = shapely.segmentize(geom, max_segment_length=_segment_length(geom))
    return shapely.make_valid(shapely.transform(dense, tr.transform, interleaved=False))


def _segment_length(geom: BaseGeometry) -> float:
    minx, miny, maxx, maxy = geom.bounds
    return max(maxx - minx, maxy - miny, 1e-9) / 64


def read_vector(path: str | Path, layer: str | int | None = None) -> tuple[np.ndarray, dict, CRS]:
    """Geometries (shapely array), attribute columns and CRS of an OGR vector layer."""
    import pyogrio.raw  # here: only commands given a vector file load OGR's reader

    path = Path(path)
    if not path.exists():
        raise EoSslError("input_not_found", f"Vector file {path} does not exist.", "Check the path.")
    try:
        meta, _, wkb, fields = pyogrio.raw.read(path, layer=layer)
    except Exception as exc:  # noqa: BLE001 - pyogrio raises DataSourceError, DataLayerError, ...
        raise EoSslError("corrupt_file", f"Cannot read vector file {path}: {exc}",
                         "Give a readable OGR vector file (GeoPackage, Shapefile, GeoJSON, ...).") from exc
    if meta.get("crs") is None:
        raise EoSslError("no_crs", f"Vector file {path} has no CRS.", "Assign a CRS in QGIS or with ogr2ogr -a_srs.")
    geoms = shapely.from_wkb(wkb) if wkb is not None else np.array([], dtype=object)
    columns = {name: values for name, values in zip(meta["fields"], fields, strict=True)}
    return geoms, columns, CRS.from_user_input(meta["crs"])


def load_aoi(path: str | Path, layer: str | int | None = None) -> AOI:
    """The union of the polygons of a vector file; lines and points are an error, invalid rings are repaired."""
    geoms, _, crs = read_vector(path, layer)
    geoms = [g for g in geoms if g is not None and not g.is_empty]
    if not geoms:
        raise EoSslError("aoi_empty", f"The AOI file {path} has no geometries.", "Draw or select at least one polygon.")
    kinds = {g.geom_type for g in geoms}
    if not kinds <= {"Polygon", "MultiPolygon"}:
        raise EoSslError("aoi_not_polygon", f"The AOI file {path} holds {', '.join(sorted(kinds))}, not polygons.",
                         "Give a polygon layer as AOI (or use --bbox).")
    union = shapely.union_all([shapely.make_valid(g) for g in geoms])
    union = _polygonal(union)
    if union.is_empty or union.area == 0:
        raise EoSslError("aoi_empty", f"The AOI polygons of {path} have no area.", "Give polygons with an area.")
    return AOI(union, crs, str(path))


def _polygonal(geom: BaseGeometry) -> BaseGeometry:
    """Keep the polygon parts (make_valid can return collections with lines)."""
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [g for g in getattr(geom, "geoms", []) if g.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def bbox_aoi(text: str, crs: str) -> AOI:
    """``'minx,miny,maxx,maxy'`` in ``crs`` (e.g. ``EPSG:4326``) as an AOI."""
    try:
        minx, miny, maxx, maxy = (float(v) for v in text.replace(" ", "").split(","))
    except ValueError as exc:
        raise EoSslError("bad_bbox", f"--bbox {text!r} is not four comma-separated numbers.",
                         "Use --bbox minx,miny,maxx,maxy --bbox-crs EPSG:4326") from exc
    if not (minx < maxx and miny < maxy):
        raise EoSslError("bad_bbox", f"--bbox {text!r} has min >= max.", "Order is minx,miny,maxx,maxy.")
    try:
        crs_obj = CRS.from_user_input(crs)
    except Exception as exc:  # noqa: BLE001 - pyproj.CRSError
        raise EoSslError("bad_crs", f"{crs!r} is not a CRS.", "Use an EPSG code such as EPSG:4326.") from exc
    return AOI(shapely.box(minx, miny, maxx, maxy), crs_obj, f"bbox {text} {crs}")


def parse_poi(text: str | None) -> tuple[dt.date, dt.date] | None:
    """``'2017-01-01/2017-12-31'`` (either end may be empty: open range) -> (start, end) inclusive."""
    if not text:
        return None
    parts = text.split("/")
    if len(parts) != 2:
        raise EoSslError("bad_poi", f"--poi {text!r} is not START/END.", "Use --poi 2017-01-01/2017-12-31.")
    try:
        start = dt.date.fromisoformat(parts[0]) if parts[0] else dt.date.min
        end = dt.date.fromisoformat(parts[1]) if parts[1] else dt.date.max
    except ValueError as exc:
        raise EoSslError("bad_poi", f"--poi {text!r}: {exc}.",
                         "Dates are YYYY-MM-DD, e.g. 2017-01-01/2017-12-31.") from exc
    if end < start:
        raise EoSslError("bad_poi", f"--poi {text!r} ends before it starts.", "Swap the two dates.")
    return start, end
