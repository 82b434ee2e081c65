"""Per-parcel class statistics of a categorical raster, one windowed read per block of the raster.

For each block of the map that some parcel touches: read the block once (and the confidence block), rasterise
the parcels of that block into a parcel-id raster and accumulate ``np.bincount`` over (parcel, class) pairs. A
parcel spanning several blocks is summed over them. Cost: one read per block plus one rasterisation per parcel
and block it touches, instead of one read and one mask per parcel (``rasterio.mask``).

Rules, chosen to match a per-parcel ``rasterio.mask`` count:

- A pixel belongs to a parcel when its centre lies inside the parcel (GDAL's default rasterisation rule).
- Overlapping parcels each get all their pixels: parcels are coloured into layers of non-overlapping parcels and
  each layer is rasterised on its own (one layer when nothing overlaps, the usual case).
- A parcel that holds no pixel centre (smaller than a pixel, or a thin sliver) is counted again with the
  all-touched rule (every pixel it touches), one small window each; ``rule`` records which rule counted it.
- Map pixels equal to the map's nodata value (or masked by its mask band) are not valid and are not counted as
  a class. The majority class is the most frequent valid class; ties go to the lower class id.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import shapely
from affine import Affine
from rasterio.enums import MaskFlags
from rasterio.features import geometry_window, rasterize
from rasterio.windows import Window

from backend.errors import EoSslError

#: Side of a processing window in pixels (rounded to whole blocks of the file): 1024 x 1024 uint8 = 1 MiB.
WINDOW = 1024


@dataclass
class ZonalResult:
    """Per parcel (in input order): pixel counts, the majority class and how sure it is."""

    n_pixels: np.ndarray  # pixels whose centre (or, for the fallback, any part) is in the parcel, nodata included
    n_valid: np.ndarray  # of those, pixels with a class (not nodata)
    majority: np.ndarray  # class id, or -1 where n_valid == 0
    fraction: np.ndarray  # share of the valid pixels in the majority class (NaN where n_valid == 0)
    entropy: np.ndarray  # Shannon entropy of the class distribution in bits (NaN where n_valid == 0)
    confidence: np.ndarray  # mean confidence over pixels with both a class and a confidence (NaN if none)
    rule: np.ndarray  # "centre", "all_touched" or "" (no pixel)
    class_values: np.ndarray  # every class id seen in the parcels, ascending
    class_pixels: np.ndarray  # pixels per class of class_values (summed over parcels)
    class_parcels: np.ndarray  # parcels per majority class of class_values
    blocks_read: int
    fallback_parcels: int
    overlap_layers: int


class ClassIndex:
    """Maps class values to dense indices 0..K-1 in order of first appearance (K grows as blocks are read).

    8- and 16-bit maps use a lookup table (one gather per block); wider integer maps a sorted search.
    """

    def __init__(self, dtype: np.dtype) -> None:
        self.dtype = np.dtype(dtype)
        self.values: list[int] = []
        self.small = self.dtype.itemsize <= 2
        if self.small:
            self.offset = -int(np.iinfo(self.dtype).min)
            self.lut = np.full(1 << (8 * self.dtype.itemsize), -1, np.int32)
        else:
            self.known = np.zeros(0, np.int64)
            self.known_idx = np.zeros(0, np.int32)

    def __len__(self) -> int:
        return len(self.values)

    def __call__(self, data: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Dense class index per pixel, -1 where not valid."""
        if self.small:
            codes = data.astype(np.int32) + self.offset if self.offset else data
            present = np.bincount(codes[valid].ravel(), minlength=self.lut.size) > 0
            new = np.nonzero(present & (self.lut < 0))[0]
            if len(new):
                self.lut[new] = np.arange(len(self.values), len(self.values) + len(new), dtype=np.int32)
                self.values.extend(int(v) - self.offset for v in new)
            idx = self.lut[codes]
        else:
            vals = data.astype(np.int64)
            new = np.setdiff1d(np.unique(vals[valid]), self.known)
            if len(new):
                self.values.extend(int(v) for v in new)
                allv = np.concatenate([self.known, new])
                alli = np.concatenate([self.known_idx, np.arange(len(self.known), len(allv), dtype=np.int32)])
                order = np.argsort(allv)
                self.known, self.known_idx = allv[order], alli[order]
            pos = np.clip(np.searchsorted(self.known, vals), 0, max(len(self.known) - 1, 0))
            idx = self.known_idx[pos] if len(self.known) else np.full(vals.shape, -1, np.int32)
        idx = np.where(valid, idx, -1)
        return idx.astype(np.int32, copy=False)


def overlap_layers(geoms: np.ndarray) -> tuple[np.ndarray, int]:
    """A layer number per geometry such that no two geometries of a layer share interior (greedy colouring).

    Parcels that only touch along an edge share a layer; one rasterisation per layer then gives every parcel all
    its pixels, as a per-parcel mask would.
    """
    layer = np.zeros(len(geoms), np.int32)
    present = np.nonzero([g is not None for g in geoms])[0]
    if len(present) < 2:
        return layer, 1
    g = geoms[present]
    tree = shapely.STRtree(g)
    a, b = tree.query(g, predicate="intersects")
    keep = a < b
    a, b = a[keep], b[keep]
    if len(a):
        inner = shapely.relate_pattern(g[a], g[b], "T********")
        a, b = present[a[inner]], present[b[inner]]
    if not len(a):
        return layer, 1
    neighbours: dict[int, list[int]] = {}
    for i, j in zip(a.tolist(), b.tolist()):
        neighbours.setdefault(j, []).append(i)  # colour j after i (i < j)
    for j in sorted(neighbours):
        used = {int(layer[i]) for i in neighbours[j]}
        c = 0
        while c in used:
            c += 1
        layer[j] = c
    return layer, int(layer.max()) + 1


def _windows(src: rasterio.DatasetReader, band: int, region: Window, size: int = WINDOW) -> list[Window]:
    """Windows over ``region`` aligned on the file's blocks: whole tiles, or whole-width strips."""
    bh, bw = src.block_shapes[band - 1]
    if bw >= src.width:  # striped: full-width windows of as many rows as the budget allows
        wh = max(bh, (size * size // max(src.width, 1)) // bh * bh)
        ww = src.width
    else:
        wh, ww = max(bh, size // bh * bh), max(bw, size // bw * bw)
    r0 = int(region.row_off) // wh * wh
    c0 = int(region.col_off) // ww * ww
    r1 = min(src.height, int(region.row_off + region.height))
    c1 = min(src.width, int(region.col_off + region.width))
    return [Window(c, r, min(ww, c1 - c), min(wh, r1 - r))
            for r in range(r0, r1, wh) for c in range(c0, c1, ww)]


def _corners_box(transform: Affine, w: int, h: int) -> shapely.Geometry:
    pts = [transform @ (0, 0), transform @ (w, 0), transform @ (w, h), transform @ (0, h)]
    if transform.b == 0 and transform.d == 0:
        xs, ys = zip(*pts)
        return shapely.box(min(xs), min(ys), max(xs), max(ys))
    return shapely.Polygon(pts)


def footprint(src: rasterio.DatasetReader) -> shapely.Geometry:
    """The raster's extent as a polygon in its CRS."""
    return _corners_box(src.transform, src.width, src.height)


def valid_mask(src: rasterio.DatasetReader, band: int, data: np.ndarray, window: Window) -> np.ndarray:
    """Pixels with a value: not nodata, not NaN, not masked by an internal/external mask band."""
    valid = np.ones(data.shape, bool)
    if data.dtype.kind == "f":
        valid &= np.isfinite(data)
    nodata = src.nodatavals[band - 1]
    flags = src.mask_flag_enums[band - 1]
    if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
        valid &= data != nodata
    elif MaskFlags.per_dataset in flags and MaskFlags.all_valid not in flags:
        valid &= src.read_masks(band, window=window) > 0
    return valid


class _Confidence:
    """The confidence raster, read block by block on the map's grid, scaled to 0..1."""

    def __init__(self, path: Path, scale: float | None, grid_of: rasterio.DatasetReader) -> None:
        try:
            self.src = rasterio.open(path)
        except rasterio.errors.RasterioIOError as exc:
            raise EoSslError("corrupt_file", f"Cannot read confidence raster {path}: {exc}",
                             "Give the confidence GeoTIFF written by eo-ssl predict --confidence.") from exc
        s = self.src
        if (s.width, s.height) != (grid_of.width, grid_of.height) or not s.transform.almost_equals(grid_of.transform) \
                or (s.crs != grid_of.crs):
            s.close()
            raise EoSslError("confidence_grid_mismatch",
                             f"The confidence raster {path} ({s.width} x {s.height} px, {s.crs}) is not on the map's "
                             f"grid ({grid_of.width} x {grid_of.height} px, {grid_of.crs}).",
                             "Give the confidence raster predicted together with the map (same size and origin).")
        kind = np.dtype(s.dtypes[0]).kind
        file_scale, file_offset = float(s.scales[0] or 1.0), float(s.offsets[0] or 0.0)
        if scale is not None:
            self.scale, self.offset = float(scale), 0.0
        elif file_scale != 1.0 or file_offset != 0.0:
            self.scale, self.offset = file_scale, file_offset
        elif kind == "f":
            self.scale, self.offset = 1.0, 0.0
        else:
            s.close()
            raise EoSslError("confidence_scale_unknown",
                             f"The confidence raster {path} holds integers ({s.dtypes[0]}) and says nothing about "
                             "their scale.", "Give --confidence-scale, e.g. 0.01 for percent or 0.003921568 "
                             "(1/255) for 0..255.")

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        data = self.src.read(1, window=window)
        valid = valid_mask(self.src, 1, data, window)
        conf = data.astype(np.float64) * self.scale + self.offset
        return conf, valid

    def close(self) -> None:
        self.src.close()


class _Accumulator:
    """Sums per parcel: (parcel, class, count) triplets, pixel counts, confidence sums."""

    def __init__(self, n: int) -> None:
        self.n_pixels = np.zeros(n, np.int64)
        self.conf_sum = np.zeros(n, np.float64)
        self.conf_n = np.zeros(n, np.int64)
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def add(self, members: np.ndarray, pid: np.ndarray, cls: np.ndarray, k: int,
            conf: np.ndarray | None = None, conf_ok: np.ndarray | None = None) -> None:
        """``pid``: local 1-based parcel number per pixel (0 = none) for parcels ``members``; ``cls``: class index."""
        m = len(members)
        self.n_pixels[members] += np.bincount(pid.ravel(), minlength=m + 1)[1:]
        sel = (pid > 0) & (cls >= 0)
        if not sel.any():
            return
        p = pid[sel].astype(np.int64) - 1
        c = cls[sel].astype(np.int64)
        counts = np.bincount(p * k + c, minlength=m * k)
        nz = np.nonzero(counts)[0]
        self.parts.append((members[nz // k], nz % k, counts[nz]))
        if conf is not None and conf_ok is not None:
            sc = sel & conf_ok
            if sc.any():
                pc = pid[sc].astype(np.int64) - 1
                self.conf_sum[members] += np.bincount(pc, weights=conf[sc], minlength=m)
                self.conf_n[members] += np.bincount(pc, minlength=m)


def zonal_classes(map_path: str | Path, geoms: np.ndarray, *, band: int = 1, confidence: str | Path | None = None,
                  confidence_scale: float | None = None, window: int = WINDOW,
                  progress: Callable[[int, int], None] | None = None) -> ZonalResult:
    """Class statistics per parcel; ``geoms`` are in the map's CRS (None for parcels without a polygon)."""
    geoms = np.asarray(geoms, dtype=object)
    n = len(geoms)
    with rasterio.open(map_path) as src:
        dtype = np.dtype(src.dtypes[band - 1])
        if dtype.kind not in "ui":
            raise EoSslError("map_not_classes", f"The map {map_path} holds {dtype} values, not class ids.",
                             "Give a categorical raster of integer class ids (e.g. from eo-ssl predict).")
        conf = _Confidence(Path(confidence), confidence_scale, src) if confidence else None
        try:
            return _run(src, band, geoms, n, dtype, conf, window, progress)
        finally:
            if conf is not None:
                conf.close()


def _run(src: rasterio.DatasetReader, band: int, geoms: np.ndarray, n: int, dtype: np.dtype,
         conf: _Confidence | None, window: int, progress: Callable[[int, int], None] | None) -> ZonalResult:
    index = ClassIndex(dtype)
    acc = _Accumulator(n)
    fp = footprint(src)
    present = np.array([g is not None for g in geoms], bool)
    inside = np.zeros(n, bool)
    if present.any():
        inside[present] = shapely.intersects(np.asarray(list(geoms[present]), dtype=object), fp)
    layer, n_layers = overlap_layers(np.where(inside, geoms, None))
    tree = shapely.STRtree(np.where(inside, geoms, None))
    # only the part of the raster under the parcels is read
    windows: list[Window] = []
    if inside.any():
        region = geometry_window(src, [shapely.box(*shapely.total_bounds(geoms[inside]))])
        windows = _windows(src, band, region, window)
    blocks_read = 0
    for step, win in enumerate(windows, start=1):
        wt = src.window_transform(win)
        h, w = int(win.height), int(win.width)
        hits = tree.query(_corners_box(wt, w, h))
        if len(hits):
            blocks_read += 1
            data = src.read(band, window=win)
            cls = index(data, valid_mask(src, band, data, win))
            c, cok = conf.read(win) if conf is not None else (None, None)
            k = max(len(index), 1)
            for lay in np.unique(layer[hits]):
                members = np.sort(hits[layer[hits] == lay])
                pid = rasterize(zip(geoms[members], range(1, len(members) + 1)), out_shape=(h, w), transform=wt,
                                fill=0, dtype="int32")
                acc.add(members, pid, cls, k, c, cok)
        if progress is not None:
            progress(step, len(windows))

    # parcels that hold no pixel centre: count the pixels they touch, one small window each
    fallback = np.nonzero(inside & (acc.n_pixels == 0))[0]
    for i in fallback:
        try:
            win = geometry_window(src, [geoms[i]], pad_x=1, pad_y=1)
        except rasterio.errors.WindowError:
            continue
        h, w = int(win.height), int(win.width)
        if h <= 0 or w <= 0:
            continue
        wt = src.window_transform(win)
        data = src.read(band, window=win)
        cls = index(data, valid_mask(src, band, data, win))
        c, cok = conf.read(win) if conf is not None else (None, None)
        pid = rasterize([(geoms[i], 1)], out_shape=(h, w), transform=wt, fill=0, dtype="int32", all_touched=True)
        acc.add(np.array([i]), pid, cls, max(len(index), 1), c, cok)

    result = _finish(acc, index, n, fallback)
    result.blocks_read, result.overlap_layers = blocks_read, n_layers
    return result


def _finish(acc: _Accumulator, index: ClassIndex, n: int, fallback: np.ndarray) -> ZonalResult:
    k = max(len(index), 1)
    values = np.array(index.values, np.int64)
    majority = np.full(n, -1, np.int64)
    fraction = np.full(n, np.nan)
    entropy = np.full(n, np.nan)
    n_valid = np.zeros(n, np.int64)
    class_pixels = np.zeros(len(values), np.int64)
    class_parcels = np.zeros(len(values), np.int64)
    if acc.parts:
        p = np.concatenate([a for a, _, _ in acc.parts]).astype(np.int64)
        c = np.concatenate([b for _, b, _ in acc.parts]).astype(np.int64)
        cnt = np.concatenate([x for _, _, x in acc.parts]).astype(np.int64)
        keys, inv = np.unique(p * k + c, return_inverse=True)
        tot = np.bincount(inv.ravel(), weights=cnt).astype(np.int64)
        p, c = keys // k, keys % k
        n_valid = np.bincount(p, weights=tot, minlength=n).astype(np.int64)
        class_pixels = np.bincount(c, weights=tot, minlength=len(values)).astype(np.int64)
        # majority: sort by parcel, then count descending, then class id ascending; take each parcel's first
        order = np.lexsort((values[c], -tot, p))
        ps = p[order]
        first = np.ones(len(ps), bool)
        first[1:] = ps[1:] != ps[:-1]
        winners = order[first]
        majority[p[winners]] = values[c[winners]]
        fraction[p[winners]] = tot[winners] / n_valid[p[winners]]
        share = tot / n_valid[p]
        ent = np.bincount(p, weights=-share * np.log2(share), minlength=n)
        has = n_valid > 0
        entropy[has] = np.abs(ent[has])
        class_parcels = np.bincount(c[winners], minlength=len(values)).astype(np.int64)
    confidence = np.full(n, np.nan)
    ok = acc.conf_n > 0
    confidence[ok] = acc.conf_sum[ok] / acc.conf_n[ok]
    rule = np.full(n, "", dtype=object)
    rule[acc.n_pixels > 0] = "centre"
    rule[fallback[acc.n_pixels[fallback] > 0]] = "all_touched"
    order = np.argsort(values)
    return ZonalResult(n_pixels=acc.n_pixels, n_valid=n_valid, majority=majority, fraction=fraction,
                       entropy=entropy, confidence=confidence, rule=rule, class_values=values[order],
                       class_pixels=class_pixels[order], class_parcels=class_parcels[order], blocks_read=0,
                       fallback_parcels=int(len(fallback)), overlap_layers=1)
