"""Reading parcels faithfully (every feature, every attribute), repairing and reprojecting them in bulk, and
writing a GeoPackage atomically.

Geometries are handled as shapely arrays: validity checks, repair, densification and reprojection are vectorised
over all parcels (a Python loop per parcel costs seconds per hundred thousand parcels).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import pyogrio.raw
import shapely
from pyproj import CRS, Transformer

from backend.data.aoi import layers_of
from backend.errors import EoSslError
from backend.outputs import Output

POLYGONAL = ("Polygon", "MultiPolygon")


@dataclass
class ParcelLayer:
    """One vector layer as read: geometries (source CRS), attribute columns in file order, feature ids.

    ``geoms`` holds the polygons to use (repaired where the source was invalid; None where there is no usable
    polygon), ``problem`` says why a feature has none (``no_geometry``, ``not_polygon``, ``invalid_geometry``), and
    ``note`` what was done to it (e.g. ``repaired: Self-intersection[...]``); both are "" otherwise.
    """

    path: Path
    layer: str
    crs: CRS
    fids: np.ndarray
    wkb: np.ndarray
    geoms: np.ndarray
    fields: list[str]
    dtypes: list[str]
    columns: list[np.ndarray]
    geometry_type: str
    problem: np.ndarray
    note: np.ndarray
    metadata: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.fids)

    def column(self, name: str) -> np.ndarray:
        return self.columns[self.fields.index(name)]

    def ids(self, id_field: str | None) -> np.ndarray:
        """Parcel ids for messages and indexes: the values of ``id_field``, else the feature ids."""
        if id_field:
            return self.column(id_field)
        return self.fids

    def label(self, i: int, id_field: str | None) -> str:
        """A parcel as a person finds it in QGIS: its id field value, else its feature id."""
        return f"{id_field}={self.column(id_field)[i]!r}" if id_field else f"fid {self.fids[i]}"


def polygonal_part(geom: shapely.Geometry | None) -> shapely.Geometry | None:
    """The (multi)polygon part of ``geom``: make_valid can return collections holding lines and points."""
    if geom is None or geom.is_empty:
        return None
    if geom.geom_type in POLYGONAL:
        return geom
    parts = [g for g in getattr(geom, "geoms", []) if g.geom_type in POLYGONAL and not g.is_empty]
    if not parts:
        return None
    return shapely.union_all(parts) if len(parts) > 1 else parts[0]


def read_parcels(path: str | Path, layer: str | None = None, id_field: str | None = None,
                 warn: Any = None) -> ParcelLayer:
    """Read every feature of a polygon layer; repair invalid polygons and say which could not be used.

    Nothing is dropped: features without a usable polygon keep ``geoms[i] = None`` and a ``problem``.
    """
    path = Path(path)
    if not path.exists():
        raise EoSslError("input_not_found", f"Parcels file {path} does not exist.", "Check the --parcels path.")
    layers = layers_of(path)
    if layer is not None and layers and layer not in layers:
        raise EoSslError("layer_not_found", f"{path} has no layer {layer!r}.", f"Its layers: {', '.join(layers)}.")
    try:
        meta, fids, wkb, columns = pyogrio.raw.read(path, layer=layer, return_fids=True)
        info = pyogrio.read_info(path, layer=layer)
    except Exception as exc:  # noqa: BLE001
        raise EoSslError("corrupt_file", f"Cannot read parcels {path}: {exc}",
                         "Give a readable OGR vector file (GeoPackage, Shapefile, GeoJSON, ...).") from exc
    if meta.get("crs") is None:
        raise EoSslError("no_crs", f"Parcels file {path} has no CRS.", "Assign a CRS in QGIS or with ogr2ogr -a_srs.")
    if wkb is None or len(wkb) == 0:
        raise EoSslError("parcels_empty", f"Parcels file {path} has no features.", "Give a layer with polygons.")
    fields = [str(f) for f in meta["fields"]]
    if id_field is not None and id_field not in fields:
        raise EoSslError("id_field_missing", f"The parcels file {path} has no field {id_field!r}.",
                         f"Pick one of its fields: {', '.join(fields) or '(none)'}, or leave --id-field out to use "
                         "the feature ids.")
    wkb = np.asarray(wkb, dtype=object)
    raw = shapely.from_wkb(wkb, on_invalid="ignore")
    n = len(raw)
    problem = np.full(n, "", dtype=object)
    note = np.full(n, "", dtype=object)
    geoms = np.array(raw, dtype=object)

    missing = shapely.is_missing(raw) | shapely.is_empty(raw)
    problem[missing] = "no_geometry"
    geoms[missing] = None
    types = shapely.get_type_id(raw)
    # 3 = Polygon, 6 = MultiPolygon, 7 = GeometryCollection (may hold polygons)
    not_poly = ~missing & ~np.isin(types, (3, 6, 7))
    problem[not_poly] = "not_polygon"
    geoms[not_poly] = None
    check = ~missing & ~not_poly
    valid = np.zeros(n, bool)
    valid[check] = shapely.is_valid(raw[check])
    for i in np.nonzero(check & ~valid)[0]:
        reason = shapely.is_valid_reason(raw[i])
        fixed = polygonal_part(shapely.make_valid(raw[i]))
        if fixed is None or fixed.area == 0:
            problem[i], geoms[i] = "invalid_geometry", None
            note[i] = f"not repairable: {reason}"
        else:
            geoms[i] = fixed
            note[i] = f"repaired: {reason}"
    collections = check & valid & (types == 7)
    for i in np.nonzero(collections)[0]:
        geoms[i] = polygonal_part(raw[i])
        if geoms[i] is None:
            problem[i] = "not_polygon"
    if warn is not None:
        ids = ParcelLayer(path, "", CRS.from_user_input(meta["crs"]), fids, wkb, geoms, fields, [], list(columns),
                          "", problem, note)
        repaired = np.nonzero(np.char.startswith(note.astype(str), "repaired"))[0]
        if len(repaired):
            warn("geometry_repaired", f"{len(repaired)} parcel(s) had invalid geometries and were repaired "
                 f"(e.g. {ids.label(int(repaired[0]), id_field)}: {note[repaired[0]]}); see the geom_note field.")
        for code, what in (("invalid_geometry", "invalid geometries that could not be repaired"),
                           ("no_geometry", "no geometry"), ("not_polygon", "geometries that are not polygons")):
            bad = np.nonzero(problem == code)[0]
            if len(bad):
                warn(code, f"{len(bad)} parcel(s) have {what} (e.g. {ids.label(int(bad[0]), id_field)}); they are "
                     f"kept in the output with status {code}.")
    return ParcelLayer(path=path, layer=str(info.get("layer_name") or layer or ""),
                       crs=CRS.from_user_input(meta["crs"]), fids=np.asarray(fids), wkb=wkb, geoms=geoms,
                       fields=fields, dtypes=[str(d) for d in meta["dtypes"]], columns=list(columns),
                       geometry_type=str(meta.get("geometry_type") or "Unknown"), problem=problem, note=note,
                       metadata=dict(info.get("layer_metadata") or {}))


def reproject_many(geoms: np.ndarray, src: CRS, dst: CRS) -> np.ndarray:
    """Reproject an array of geometries (None allowed) at once, with edges densified to 1/64 of each extent.

    Densifying keeps long straight edges close to their true (curved) path in the target CRS, as
    :func:`backend.data.aoi.reproject_geometry` does for one geometry. Geometries that do not survive the
    transformation (coordinates outside the target CRS's domain) come back as None.
    """
    geoms = np.asarray(geoms, dtype=object)
    if CRS.from_user_input(src) == CRS.from_user_input(dst):
        return geoms.copy()
    out = np.full(len(geoms), None, dtype=object)
    present = np.array([g is not None for g in geoms], bool)
    if not present.any():
        return out
    g = np.asarray(list(geoms[present]), dtype=object)
    bounds = shapely.bounds(g)
    seg = np.maximum(np.maximum(bounds[:, 2] - bounds[:, 0], bounds[:, 3] - bounds[:, 1]), 1e-9) / 64
    dense = shapely.segmentize(g, seg)
    tr = Transformer.from_crs(src, dst, always_xy=True)

    def fn(xy: np.ndarray) -> np.ndarray:
        x, y = tr.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    moved = shapely.transform(dense, fn)
    b = shapely.bounds(moved)
    finite = np.isfinite(b).all(axis=1)
    moved[~finite] = None
    ok = finite.copy()
    ok[finite] = shapely.is_valid(moved[finite])
    for i in np.nonzero(finite & ~ok)[0]:
        moved[i] = polygonal_part(shapely.make_valid(moved[i]))
    out[present] = moved
    return out


def write_gpkg(out: Path, layer: str, crs: CRS, wkb: np.ndarray, names: list[str], columns: list[np.ndarray],
               dtypes: list[str], geometry_type: str, metadata: dict[str, str] | None = None,
               fids: np.ndarray | None = None) -> None:
    """Write a GeoPackage layer to ``out`` (a new file: callers write under a temporary name, see
    :class:`backend.outputs.Output`, and rename it into place when complete).

    Integer columns that came back from OGR as floats because they hold nulls are written as integers again, with
    the nulls as nulls (``dtypes`` are the source's declared types).
    """
    data, masks = [], []
    for values, dtype in zip(columns, dtypes):
        values = np.asarray(values)
        mask = None
        if dtype.startswith(("int", "uint")) and values.dtype.kind == "f":
            mask = ~np.isfinite(values)
            values = np.where(mask, 0, values).astype(dtype)
        elif dtype == "bool" and values.dtype.kind == "f":
            mask = ~np.isfinite(values)
            values = np.where(mask, 0, values).astype(bool)
        elif values.dtype.kind == "f":
            mask = ~np.isfinite(values)
            mask = mask if mask.any() else None
        data.append(values)
        masks.append(mask)
    names, data, masks = list(names), list(data), list(masks)
    layer_options = {}
    if fids is not None:
        layer_options["FID"] = "fid"
        names.append("fid")
        data.append(np.asarray(fids, np.int64))
        masks.append(None)
    promote = geometry_type == "MultiPolygon"
    pyogrio.raw.write(out, wkb, data, names, field_mask=masks, layer=layer, driver="GPKG",
                      geometry_type=geometry_type, crs=crs.to_wkt(), promote_to_multi=promote,
                      layer_metadata=metadata, layer_options=layer_options or None,
                      # GeoPackage 1.3: QGIS 3.22's GDAL reads it without "partially supported" warnings
                      dataset_options={"VERSION": "1.3"})


def check_gpkg_out(out: str | Path, overwrite: bool, inputs: list[tuple[str, str]] | None = None) -> Output:
    """The --out GeoPackage, checked before any work (see :class:`backend.outputs.Output`)."""
    out = Path(out)
    if out.suffix.lower() != ".gpkg":
        raise EoSslError("bad_output", f"--out {out} is not a .gpkg file.",
                         "Write the labelled parcels to a GeoPackage, e.g. --out labelled.gpkg.")
    return Output(out, kind="labelled parcels", folder=False, replace=overwrite, inputs=inputs or ()).check()
