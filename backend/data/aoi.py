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


@dataclass(frozen=True)
class Broken:
    """A feature whose geometry GEOS cannot read (e.g. a ring of two points), named as QGIS shows it."""

    index: int
    fid: int
    reason: str

    def describe(self, path: str | Path) -> str:
        return f"feature {self.fid} of {path} ({self.reason})"


def layers_of(path: str | Path) -> list[str]:
    """The layer names of a vector file ([] when OGR cannot list them)."""
    import pyogrio

    try:
        return [str(name) for name, _ in pyogrio.list_layers(path)]
    except Exception:  # noqa: BLE001 - pyogrio raises DataSourceError and friends
        return []


def read_vector(path: str | Path, layer: str | int | None = None, option: str = "--aoi"
                ) -> tuple[np.ndarray, dict, CRS, list[Broken]]:
    """Geometries (shapely array; None where a feature has none or GEOS cannot read it), attribute columns, CRS,
    and the features whose geometry could not be read."""
    import pyogrio.raw  # here: only commands given a vector file load OGR's reader

    path = Path(path)
    if not path.exists():
        raise EoSslError("input_not_found", f"Vector file {path} does not exist.", "Check the path.")
    if isinstance(layer, str):
        names = layers_of(path)
        if names and layer not in names:
            raise EoSslError("layer_not_found", f"{path} has no layer {layer!r}.",
                             f"Its layers: {', '.join(names)}; pick one with {option}-layer.")
    try:
        meta, fids, wkb, fields = pyogrio.raw.read(path, layer=layer, return_fids=True)
    except Exception as exc:  # noqa: BLE001 - pyogrio raises DataSourceError, DataLayerError, ...
        raise EoSslError("corrupt_file", f"Cannot read vector file {path}: {exc}",
                         "Give a readable OGR vector file (GeoPackage, Shapefile, GeoJSON, ...).") from exc
    if meta.get("crs") is None:
        raise EoSslError("no_crs", f"Vector file {path} has no CRS.", "Assign a CRS in QGIS or with ogr2ogr -a_srs.")
    wkb = np.asarray(wkb if wkb is not None else [], dtype=object)
    geoms = shapely.from_wkb(wkb, on_invalid="ignore") if len(wkb) else np.array([], dtype=object)
    broken = []
    for i in np.nonzero([g is None and w is not None for g, w in zip(geoms, wkb, strict=True)])[0]:
        try:
            shapely.from_wkb(wkb[i])
            reason = "unreadable geometry"
        except Exception as exc:  # noqa: BLE001 - shapely.errors.GEOSException
            reason = str(exc).split(": ", 1)[-1]
        broken.append(Broken(int(i), int(fids[i]) if fids is not None else int(i), reason))
    columns = {name: values for name, values in zip(meta["fields"], fields, strict=True)}
    return geoms, columns, CRS.from_user_input(meta["crs"]), broken


def load_aoi(path: str | Path, layer: str | int | None = None) -> AOI:
    """The union of the polygons of a vector file; lines and points are an error, invalid rings are repaired, a
    geometry GEOS cannot read (a ring of two points) is an error naming the feature."""
    geoms, _, crs, broken = read_vector(path, layer)
    if broken:
        raise EoSslError("invalid_geometry", f"The AOI {broken[0].describe(path)} cannot be read"
                         + (f", and {len(broken) - 1} more feature(s)" if len(broken) > 1 else "") + ".",
                         "Fix or delete the feature in QGIS (Vertex tool, or Fix geometries), or use --bbox.")
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
