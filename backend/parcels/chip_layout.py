"""Where ``export-dataset`` puts its chips: one chip centred on each parcel that fits in one, larger parcels tiled
with evenly spaced chips (a tile is kept when the parcel covers at least :data:`MIN_TILE_COVER` of it), and chips
grouped by the block of the grid they fall in (one imagery window per group)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
from affine import Affine

from backend.data.grid import Grid

#: A tile of a large parcel is kept when the parcel covers at least this share of it.
MIN_TILE_COVER = 0.05


# -- placement ------------------------------------------------------------------------------------------------------


@dataclass
class Chip:
    row: int
    col: int
    parcel: int  # index into the selected parcels
    split: int


def place_chips(geoms: np.ndarray, splits: np.ndarray, grid: Grid, size: int, max_per_parcel: int = 0
                ) -> list[Chip]:
    """One chip centred on each parcel that fits; larger parcels tiled with evenly spaced chips."""
    h, w = grid.shape
    inv = ~grid.transform
    chips: list[Chip] = []
    for i, g in enumerate(geoms):
        minx, miny, maxx, maxy = g.bounds
        c0, r0 = inv @ (minx, maxy)
        c1, r1 = inv @ (maxx, miny)
        c0, c1 = sorted((c0, c1))
        r0, r1 = sorted((r0, r1))
        if c1 - c0 <= size and r1 - r0 <= size:
            rows = [int(round((r0 + r1) / 2 - size / 2))]
            cols = [int(round((c0 + c1) / 2 - size / 2))]
        else:
            rows = spaced(math.floor(r0), math.ceil(r1), size)
            cols = spaced(math.floor(c0), math.ceil(c1), size)
        cand = [(min(max(r, 0), h - size), min(max(c, 0), w - size)) for r in rows for c in cols]
        cand = list(dict.fromkeys(cand))
        if len(cand) > 1:
            boxes = np.array([chip_box(grid, r, c, size) for r, c in cand], dtype=object)
            cover = shapely.area(shapely.intersection(boxes, g)) / (size * size * grid.resolution ** 2)
            keep = [k for k in np.argsort(-cover, kind="stable") if cover[k] >= MIN_TILE_COVER] or [int(cover.argmax())]
            if max_per_parcel and len(keep) > max_per_parcel:
                keep = keep[:max_per_parcel]
            cand = [cand[k] for k in sorted(keep)]
        chips += [Chip(r, c, i, int(splits[i])) for r, c in cand]
    return chips


def spaced(start: int, stop: int, size: int) -> list[int]:
    """Origins of ceil((stop - start) / size) chips spread evenly from ``start`` to ``stop - size``."""
    n = max(1, math.ceil((stop - start) / size))
    if n == 1:
        return [start]
    return [int(round(v)) for v in np.linspace(start, stop - size, n)]


def chip_box(grid: Grid, row: int, col: int, size: int) -> shapely.Geometry:
    t = grid.transform @ Affine.translation(col, row)
    x0, y0 = t @ (0, 0)
    x1, y1 = t @ (size, size)
    return shapely.box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def group_chips(chips: list[Chip], size: int, group_side: int) -> dict[tuple[int, int], list[int]]:
    groups: dict[tuple[int, int], list[int]] = {}
    for k, ch in enumerate(chips):
        groups.setdefault((ch.row // group_side, ch.col // group_side), []).append(k)
    return groups
