"""Parcels (polygons with a class attribute) as labels on the grid, with a split by parcel or by block.

The split is decided per parcel: ``by-parcel`` draws parcels at random (stratified by class), ``by-block``
draws square blocks of the grid and gives each parcel the split of the block holding its centroid. Either
way a parcel never lies on both sides, so no pixel of a validation parcel is seen in training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely
from rasterio.features import rasterize
from rasterio.windows import Window
from shapely.geometry.base import BaseGeometry

from backend.data.aoi import read_vector, reproject_geometry
from backend.data.chipstore import SPLITS
from backend.data.grid import Grid
from backend.errors import EoSslError

IGNORE_INDEX = -1

#: Colours for common land-cover and crop names (lower case); others come from PALETTE.
KNOWN_COLOURS = {
    "water": "#1f78b4", "sealake": "#1f78b4", "river": "#4aa3df", "wetland": "#6a9fb5", "forest": "#1b7837",
    "scrub": "#7fbc41", "meadow": "#b8e186", "grass": "#a6d96a", "pasture": "#c2e699", "farm": "#f1b6da",
    "farmland": "#fdae61", "annualcrop": "#fdae61", "permanentcrop": "#d9a441", "residential": "#d7301f",
    "industrial": "#7f2704", "highway": "#636363", "herbaceousvegetation": "#addd8e", "maize": "#ffd92f",
    "potatoes": "#a6761d", "land": "#b2a37a", "built-up": "#d7301f", "cropland": "#fdae61",
}
PALETTE = ["#e41a1c", "#377eb8", "#4daf4a", "#984ea3", "#ff7f00", "#ffff33", "#a65628", "#f781bf", "#999999",
           "#66c2a5", "#fc8d62", "#8da0cb", "#e78ac3", "#a6d854", "#ffd92f", "#e5c494", "#b3b3b3", "#1b9e77",
           "#d95f02", "#7570b3"]


def class_colour(name: str, index: int) -> str:
    key = name.lower().replace(" ", "").replace("_", "")
    return KNOWN_COLOURS.get(key, PALETTE[index % len(PALETTE)])


@dataclass
class Parcels:
    """Parcels on a grid: geometry (grid CRS), class id, split, source feature id."""

    geoms: np.ndarray
    class_ids: np.ndarray
    split: np.ndarray
    fids: np.ndarray
    classes: list[dict]
    class_field: str
    source: str
    split_info: dict = field(default_factory=dict)
    tree: shapely.STRtree | None = None
    #: parcels drawn with every pixel they touch (they hold no pixel centre; see :func:`holds_no_pixel_centre`)
    touched: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.tree = shapely.STRtree(self.geoms)
        if self.touched is None:
            self.touched = np.zeros(len(self.geoms), bool)

    def rasterize(self, grid: Grid, window: Window) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(class id int16 with -1 = ignore, parcel index int32 with -1 = none, split uint8) over ``window``."""
        h, w = int(window.height), int(window.width)
        transform = grid.window_transform(window)
        box = shapely.box(*_window_bounds(transform, w, h))
        hits = self.tree.query(box, predicate="intersects")
        parcel_idx = np.full((h, w), -1, np.int32)
        assert self.touched is not None
        normal, small = hits[~self.touched[hits]], hits[self.touched[hits]]
        if len(normal):
            parcel_idx = rasterize(((self.geoms[i], int(i)) for i in normal), out_shape=(h, w), transform=transform,
                                   fill=-1, dtype="int32")
        if len(small):  # under the others: a small parcel takes only pixels no parcel holds the centre of
            touched = rasterize(((self.geoms[i], int(i)) for i in small), out_shape=(h, w), transform=transform,
                                fill=-1, dtype="int32", all_touched=True)
            parcel_idx = np.where(parcel_idx >= 0, parcel_idx, touched)
        inside = parcel_idx >= 0
        labels = np.full((h, w), IGNORE_INDEX, np.int16)
        split = np.zeros((h, w), np.uint8)
        labels[inside] = self.class_ids[parcel_idx[inside]]
        split[inside] = self.split[parcel_idx[inside]]
        return labels, parcel_idx, split


def _window_bounds(transform, w: int, h: int) -> tuple[float, float, float, float]:  # noqa: ANN001
    x0, y0 = transform @ (0, 0)
    x1, y1 = transform @ (w, h)
    return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)


def load_parcels(path: str | Path, class_field: str, grid: Grid, aoi_geom: BaseGeometry, *,
                 split: str = "by-parcel", fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
                 block_size_m: float = 1280.0, seed: int = 0, layer: str | int | None = None,
                 warn=None) -> Parcels:  # noqa: ANN001 - warn: Events.warning
    """Read parcels, reproject them to the grid, keep those inside the AOI, number the classes, split."""
    geoms, columns, crs, broken = read_vector(path, layer, option="--parcels")
    if class_field not in columns:
        raise EoSslError("class_field_missing", f"The parcels file {path} has no field {class_field!r}.",
                         f"Pick one of its fields: {', '.join(columns) or '(none)'}.")
    values = columns[class_field]
    present = np.array([g is not None and not g.is_empty for g in geoms], bool)
    polygon = np.array([p and g.geom_type in ("Polygon", "MultiPolygon") for g, p in zip(geoms, present)], bool)
    if present.any() and not polygon.any():
        kinds = sorted({g.geom_type for g in geoms[present]})
        raise EoSslError("not_polygon", f"The parcels of {path} are {', '.join(kinds)}, not polygons: labels are "
                         "drawn from parcel polygons.", "Give a polygon layer (in QGIS: Buffer points, or digitise "
                         "the parcels).")
    if broken and warn:
        warn("invalid_geometry", f"{len(broken)} parcel(s) have a geometry that cannot be read and were skipped: "
             + "; ".join(b.describe(path) for b in broken[:3]) + (" ..." if len(broken) > 3 else ""))
    keep = polygon & np.array([v is not None and str(v) != "" for v in values], bool)
    skipped = int((~keep).sum()) - len(broken)
    if skipped and warn:
        warn("parcels_skipped", f"{skipped} parcel(s) have no polygon or no {class_field!r} value and were skipped.")
    fids = np.nonzero(keep)[0]
    geoms = np.array([shapely.make_valid(reproject_geometry(g, crs, grid.crs)) for g in geoms[keep]], dtype=object)
    names = np.array([str(v) for v in values[keep]], dtype=object)
    inside = np.array([g.intersects(aoi_geom) for g in geoms], bool) if len(geoms) else np.zeros(0, bool)
    if len(geoms) and not inside.any():
        raise EoSslError("parcels_outside", f"None of the {len(geoms)} parcels of {path} lies inside the AOI.",
                         "Check that the parcels and the rasters cover the same place.")
    if warn and (~inside).sum():
        warn("parcels_outside_aoi", f"{int((~inside).sum())} parcel(s) lie outside the AOI and were left out.")
    geoms, names, fids = geoms[inside], names[inside], fids[inside]
    unique = sorted(set(names.tolist()))
    if len(unique) < 2:
        raise EoSslError("one_class", f"Field {class_field!r} of {path} has {len(unique)} class(es) "
                         f"({', '.join(unique) or 'none'}) inside the AOI; a classifier needs at least two.",
                         "Pick another class field, or parcels with at least two classes.")
    lookup = {n: i for i, n in enumerate(unique)}
    class_ids = np.array([lookup[n] for n in names], np.int16)
    classes = [{"id": i, "name": n, "colour": class_colour(n, i), "parcels": int((class_ids == i).sum())}
               for i, n in enumerate(unique)]
    rng = np.random.default_rng(seed)
    if split == "by-parcel":
        parcel_split = split_stratified(class_ids, fractions, rng)
        info = {"method": split, "fractions": list(fractions), "seed": seed}
    elif split == "by-block":
        parcel_split, n_blocks = split_by_block(geoms, grid, block_size_m, fractions, rng)
        info = {"method": split, "fractions": list(fractions), "seed": seed, "block_size_m": block_size_m,
                "blocks": n_blocks}
    else:
        raise EoSslError("bad_split", f"Unknown split {split!r}.", "Use --split by-parcel or --split by-block.")
    info["parcels"] = {name: int((parcel_split == code).sum()) for name, code in SPLITS.items() if code}
    return Parcels(geoms, class_ids, parcel_split, fids, classes, class_field, str(path), info,
                   touched=holds_no_pixel_centre(geoms, grid))


def holds_no_pixel_centre(geoms: np.ndarray, grid: Grid, max_centres: int = 256) -> np.ndarray:
    """Parcels that hold no pixel centre of ``grid`` (small or thin ones): drawn with the all-touched rule, as
    label-parcels counts them, instead of vanishing from the labels. A parcel whose box spans more than
    ``max_centres`` centres is taken to hold one (the loop in prepare counts any that still get no pixel)."""
    out = np.zeros(len(geoms), bool)
    inv = ~grid.transform
    for i, g in enumerate(geoms):
        minx, miny, maxx, maxy = g.bounds
        c0, r0 = inv @ (minx, maxy)
        c1, r1 = inv @ (maxx, miny)
        cols = np.arange(math.ceil(min(c0, c1) - 0.5), math.floor(max(c0, c1) - 0.5) + 1)
        rows = np.arange(math.ceil(min(r0, r1) - 0.5), math.floor(max(r0, r1) - 0.5) + 1)
        if len(cols) * len(rows) > max_centres:
            continue
        if len(cols) and len(rows):
            cc, rr = (a.ravel() for a in np.meshgrid(cols + 0.5, rows + 0.5))
            t = grid.transform
            if shapely.contains_xy(g, t.c + t.a * cc + t.b * rr, t.f + t.d * cc + t.e * rr).any():
                continue
        out[i] = True
    return out


def _split_counts(n: int, fractions: tuple[float, float, float]) -> tuple[int, int]:
    """(n_val, n_test) for ``n`` items: at least one validation item when there are three or more."""
    n_val = int(round(n * fractions[1]))
    n_test = int(round(n * fractions[2]))
    if n >= 3:
        n_val = max(n_val, 1)
    if n_val + n_test >= n:
        n_test = max(0, n - n_val - 1)
    return n_val, n_test


def split_stratified(class_ids: np.ndarray, fractions: tuple[float, float, float],
                      rng: np.random.Generator) -> np.ndarray:
    """Per class, shuffle the parcels and cut train/val/test; small classes go to train first."""
    out = np.full(len(class_ids), SPLITS["train"], np.uint8)
    for c in np.unique(class_ids):
        idx = rng.permutation(np.nonzero(class_ids == c)[0])
        n_val, n_test = _split_counts(len(idx), fractions)
        out[idx[:n_val]] = SPLITS["val"]
        out[idx[n_val:n_val + n_test]] = SPLITS["test"]
    if not (out == SPLITS["val"]).any() and len(out) >= 3:
        # every class had fewer than three parcels: draw validation parcels across classes
        idx = rng.permutation(len(out))
        n_val, n_test = _split_counts(len(out), fractions)
        out[:] = SPLITS["train"]
        out[idx[:n_val]] = SPLITS["val"]
        out[idx[n_val:n_val + n_test]] = SPLITS["test"]
    return out


def split_by_block(geoms: np.ndarray, grid: Grid, block_size_m: float, fractions: tuple[float, float, float],
                    rng: np.random.Generator) -> tuple[np.ndarray, int]:
    x0, _, _, y1 = grid.bounds
    centroids = shapely.get_coordinates(shapely.point_on_surface(geoms))
    bx = np.floor((centroids[:, 0] - x0) / block_size_m).astype(np.int64)
    by = np.floor((y1 - centroids[:, 1]) / block_size_m).astype(np.int64)
    blocks, inverse = np.unique(bx * 1_000_003 + by, return_inverse=True)
    order = rng.permutation(len(blocks))
    n_val, n_test = _split_counts(len(blocks), fractions)
    block_split = np.full(len(blocks), SPLITS["train"], np.uint8)
    block_split[order[:n_val]] = SPLITS["val"]
    block_split[order[n_val:n_val + n_test]] = SPLITS["test"]
    return block_split[inverse.ravel()], len(blocks)
