"""Per-parcel class statistics of a categorical raster, one windowed read per block of the raster.
Long because: one streamed algorithm whose parts (index, windows, layers, counts, fallback) share one window state.

For each block of the map that some parcel touches: read the block once (and the confidence block), rasterise
the parcels of that block into a parcel-id raster and accumulate ``np.bincount`` over (parcel, class) pairs. A
parcel spanning several blocks is summed over them. Cost: one read per block plus one rasterisation per parcel
and block it touches, instead of one read and one mask per parcel (``rasterio.mask``).

Rules, chosen to match a per-parcel ``rasterio.mask`` count:

- A pixel belongs to a parcel when its centre lies inside the parcel (GDAL's default rasterisation rule).
- Overlapping parcels each get all their pixels. A block is rasterised once, summing ``2**32 + parcel number``
  per pixel (``MergeAlg.add``): the high bits count the parcels covering a pixel, the low bits name the parcel
  where it is one. Where no pixel centre lies in two parcels (the usual case) that is complete; otherwise the
  block's parcels are coloured into layers of non-overlapping parcels, rasterised one by one.
- A parcel that holds no pixel centre (smaller than a pixel, or a thin sliver) is counted again with the
  all-touched rule (every pixel it touches), one small window each; ``rule`` records which rule counted it.
- Map pixels equal to the map's nodata value (or masked by its mask band) are not valid and are not counted as
  a class. The majority class is the most frequent valid class; ties go to the lower class id.

One streamed algorithm (the class index, the windows, the overlap layers,
the accumulator and its two count tables, the all-touched fallback) whose parts share the same window and index
state (only :func:`zonal_classes` and :func:`footprint` are used outside); split, each part would read only beside
the others.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import shapely
from affine import Affine
from rasterio.enums import MaskFlags, MergeAlg
from rasterio.features import rasterize
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from backend.errors import EoSslError

#: Added to every parcel number when burning: the high 32 bits of a pixel's sum count the parcels covering it.
_ONE = 1 << 32
#: Largest dense (parcels x classes) count table, in cells (int32): 16 M cells = 64 MiB.
DENSE_MAX = 16 * 2**20
#: GDAL's block cache while labelling: every block is read once, so a large cache only costs memory.
GDAL_CACHE_BYTES = 64 * 2**20
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
    overlap_blocks: int = 0


class ClassIndex:
    """Maps class values to dense indices 0..K-1 in order of first appearance (K grows as blocks are read).

    8- and 16-bit maps use a lookup table (one gather per block) in which the nodata value never gets an index;
    wider integer maps a sorted search.
    """

    def __init__(self, dtype: np.dtype, nodata: float | None = None) -> None:
        self.dtype = np.dtype(dtype)
        self.values: list[int] = []
        self.small = self.dtype.itemsize <= 2
        self.nodata_code = None
        if self.small:
            self.offset = -int(np.iinfo(self.dtype).min)
            self.lut = np.full(1 << (8 * self.dtype.itemsize), -1, np.int32)
            info = np.iinfo(self.dtype)
            if nodata is not None and not math.isnan(nodata) and float(nodata).is_integer() \
                    and info.min <= nodata <= info.max:
                self.nodata_code = int(nodata) + self.offset
        else:
            self.known = np.zeros(0, np.int64)
            self.known_idx = np.zeros(0, np.int32)

    def __len__(self) -> int:
        return len(self.values)

    def __call__(self, data: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
        """Dense class index per pixel, -1 where not valid (nodata, or ``valid`` False)."""
        if self.small:
            codes = data.astype(np.int32) + self.offset if self.offset else data
            sample = codes if valid is None else codes[valid]
            present = np.bincount(sample.ravel(), minlength=self.lut.size) > 0
            if self.nodata_code is not None:
                present[self.nodata_code] = False
            new = np.nonzero(present & (self.lut < 0))[0]
            if len(new):
                self.lut[new] = np.arange(len(self.values), len(self.values) + len(new), dtype=np.int32)
                self.values.extend(int(v) - self.offset for v in new)
            idx = self.lut[codes]
        else:
            vals = data.astype(np.int64)
            ok = valid if valid is not None else np.ones(vals.shape, bool)
            new = np.setdiff1d(np.unique(vals[ok]), self.known)
            if len(new):
                self.values.extend(int(v) for v in new)
                allv = np.concatenate([self.known, new])
                alli = np.concatenate([self.known_idx, np.arange(len(self.known), len(allv), dtype=np.int32)])
                order = np.argsort(allv)
                self.known, self.known_idx = allv[order], alli[order]
            pos = np.clip(np.searchsorted(self.known, vals), 0, max(len(self.known) - 1, 0))
            idx = self.known_idx[pos] if len(self.known) else np.full(vals.shape, -1, np.int32)
            idx = np.where(self.known[pos] == vals, idx, -1) if len(self.known) else idx
        if valid is not None:
            idx = np.where(valid, idx, -1)
        return idx.astype(np.int32, copy=False)


def overlap_layers(geoms: np.ndarray) -> tuple[np.ndarray, int]:
    """A layer number per geometry such that no two geometries of a layer share interior (greedy colouring).

    Parcels that only touch along an edge share a layer; one rasterisation per layer then gives every parcel all
    its pixels, as a per-parcel mask would.
    """
    layer = np.zeros(len(geoms), np.int32)
    if len(geoms) < 2:
        return layer, 1
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="intersects")
    keep = a < b
    a, b = a[keep], b[keep]
    if len(a):
        inner = shapely.relate_pattern(geoms[a], geoms[b], "T********")
        a, b = a[inner], b[inner]
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


def geojson(geoms: np.ndarray) -> list[dict]:
    """GeoJSON-like dicts with numpy coordinate arrays for (multi)polygons, for ``rasterio.features.rasterize``.

    Built from one ``shapely.to_ragged_array`` call: several times cheaper than ``__geo_interface__`` (which makes a
    Python tuple per vertex), and built once per block for the two rasterisations that use it.
    """
    kind, coords, offsets = shapely.to_ragged_array(geoms)
    if kind == shapely.GeometryType.POLYGON:
        rings, polys = (o.tolist() for o in offsets)
        return [{"type": "Polygon", "coordinates": [coords[rings[r]:rings[r + 1]] for r in range(polys[i],
                                                                                               polys[i + 1])]}
                for i in range(len(geoms))]
    if kind == shapely.GeometryType.MULTIPOLYGON:
        rings, polys, multi = (o.tolist() for o in offsets)
        return [{"type": "MultiPolygon", "coordinates": [[coords[rings[r]:rings[r + 1]]
                                                          for r in range(polys[p], polys[p + 1])]
                                                         for p in range(multi[i], multi[i + 1])]}
                for i in range(len(geoms))]
    return [g.__geo_interface__ for g in geoms]


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


def pixel_window(src: rasterio.DatasetReader, bounds: tuple[float, float, float, float] | np.ndarray,
                 pad: int = 0) -> Window:
    """The whole-pixel window of the raster covering ``bounds`` (map units), padded, clipped to the raster. Not
    ``rasterio.windows.from_bounds``: it refuses a south-up or rotated transform, which this reads too."""
    x0, y0, x1, y1 = (float(v) for v in bounds)
    inv = ~src.transform
    cols, rows = zip(*(inv @ (x, y) for x in (x0, x1) for y in (y0, y1)))
    c0 = max(0, math.floor(min(cols)) - pad)
    r0 = max(0, math.floor(min(rows)) - pad)
    c1 = min(src.width, math.ceil(max(cols)) + pad)
    r1 = min(src.height, math.ceil(max(rows)) + pad)
    return Window(c0, r0, max(0, c1 - c0), max(0, r1 - r0))


def footprint(src: rasterio.DatasetReader) -> shapely.Geometry:
    """The raster's extent as a polygon in its CRS."""
    return _corners_box(src.transform, src.width, src.height)


def valid_mask(src: rasterio.DatasetReader, band: int, data: np.ndarray, window: Window,
               nodata_in_index: bool = False) -> np.ndarray | None:
    """Pixels with a value: not nodata, not NaN, not masked by an internal/external mask band.

    None (all valid) when the only rule is the nodata value and ``nodata_in_index`` says the class index already
    leaves it out.
    """
    nodata = src.nodatavals[band - 1]
    flags = src.mask_flag_enums[band - 1]
    has_nodata = nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata))
    if has_nodata and nodata_in_index and data.dtype.kind in "ui":
        return None
    valid = np.ones(data.shape, bool)
    if data.dtype.kind == "f":
        valid &= np.isfinite(data)
    if has_nodata:
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
        assert valid is not None
        conf = data.astype(np.float64) * self.scale + self.offset
        return conf, valid

    def close(self) -> None:
        self.src.close()


class _Accumulator:
    """Sums per parcel: class counts, pixel counts, confidence sums.

    Class counts live in a dense (parcels x classes) int32 table while it stays under ``dense_max`` cells (the usual
    case: 100,000 parcels x 9 classes is 3.6 MB); past that (many parcels and many class values, e.g. a map of
    crop codes) they are kept as (parcel, class, count) triplets, summed at the end.
    """

    def __init__(self, n: int, dense_max: int | None = None) -> None:
        self.n = n
        self.n_pixels = np.zeros(n, np.int64)
        self.conf_sum = np.zeros(n, np.float64)
        self.conf_n = np.zeros(n, np.int64)
        self.dense: np.ndarray | None = np.zeros((n, 0), np.int32)
        self.dense_max = DENSE_MAX if dense_max is None else dense_max
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def _add_counts(self, members: np.ndarray, classes: np.ndarray) -> None:
        k = classes.shape[1]
        if self.dense is not None and k > self.dense.shape[1]:
            cap = max(k, 2 * self.dense.shape[1], 8)
            if self.n * cap > self.dense_max:  # too many classes for a table: triplets from now on
                rows, cols = np.nonzero(self.dense)
                self.parts.append((rows, cols, self.dense[rows, cols].astype(np.int64)))
                self.dense = None
            else:
                grown = np.zeros((self.n, cap), np.int32)
                grown[:, :self.dense.shape[1]] = self.dense
                self.dense = grown
        if self.dense is not None:
            self.dense[members, :k] += classes.astype(np.int32)
            return
        rows, cols = np.nonzero(classes)
        if len(rows):
            self.parts.append((members[rows], cols, classes[rows, cols]))

    def add(self, members: np.ndarray, pid: np.ndarray, cls: np.ndarray, k: int,
            conf: np.ndarray | None = None, conf_ok: np.ndarray | None = None) -> None:
        """``pid``: local 1-based parcel number per pixel (0 = none) for parcels ``members``; ``cls``: class index
        (-1 = no class). One bincount over (parcel, class + 1) gives the pixel and the class counts."""
        m, kk = len(members), k + 1
        wide = (m + 1) * kk >= 2**31
        key = pid.astype(np.int64 if wide else np.int32) * kk
        key += cls
        key += 1
        counts = np.bincount(key.ravel(), minlength=(m + 1) * kk).reshape(m + 1, kk)[1:]
        self.n_pixels[members] += counts.sum(axis=1)
        self._add_counts(members, counts[:, 1:])
        if conf is not None and conf_ok is not None:
            sc = (pid > 0) & (cls >= 0) & conf_ok
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
        env = rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES) if "GDAL_CACHEMAX" not in os.environ \
            else contextlib.nullcontext()
        try:
            with env:
                return _run(src, band, geoms, n, dtype, conf, window, progress)
        finally:
            if conf is not None:
                conf.close()


def _run(src: rasterio.DatasetReader, band: int, geoms: np.ndarray, n: int, dtype: np.dtype,
         conf: _Confidence | None, window: int, progress: Callable[[int, int], None] | None) -> ZonalResult:
    index = ClassIndex(dtype, src.nodatavals[band - 1])
    folded = index.nodata_code is not None
    acc = _Accumulator(n)
    fp = footprint(src)
    present = np.array([g is not None for g in geoms], bool)
    inside = np.zeros(n, bool)
    if present.any():
        inside[present] = shapely.intersects(np.asarray(list(geoms[present]), dtype=object), fp)
    tree = shapely.STRtree(np.where(inside, geoms, None))
    # only the part of the raster under the parcels is read
    windows: list[Window] = []
    if inside.any():
        region = pixel_window(src, shapely.total_bounds(geoms[inside]))
        windows = _windows(src, band, region, window)
    blocks_read = overlap_blocks = 0
    n_layers = 1
    for step, win in enumerate(windows, start=1):
        wt = window_transform(win, src.transform)
        h, w = int(win.height), int(win.width)
        hits = tree.query(_corners_box(wt, w, h))
        if len(hits):
            blocks_read += 1
            data = src.read(band, window=win)
            cls = index(data, valid_mask(src, band, data, win, folded))
            c, cok = conf.read(win) if conf is not None else (None, None)
            k = max(len(index), 1)
            hits = np.sort(hits)
            shapes = geojson(geoms[hits])
            # one pass gives both the parcel and the number of parcels per pixel: each parcel adds 2**32 + its number
            burnt = rasterize(zip(shapes, range(_ONE + 1, _ONE + len(hits) + 1)), out_shape=(h, w), transform=wt,
                              fill=0, dtype="int64", merge_alg=MergeAlg.add)
            if (burnt >> 32).max() <= 1:  # no pixel centre in two parcels: the ids are complete
                acc.add(hits, (burnt & 0xFFFFFFFF).astype(np.int32), cls, k, c, cok)
            else:  # overlapping parcels: rasterise layers of non-overlapping parcels one by one
                overlap_blocks += 1
                layer, n_lay = overlap_layers(geoms[hits])
                n_layers = max(n_layers, n_lay)
                for lay in range(n_lay):
                    sel = np.nonzero(layer == lay)[0]
                    pid = rasterize(zip((shapes[i] for i in sel), range(1, len(sel) + 1)), out_shape=(h, w),
                                    transform=wt, fill=0, dtype="int32")
                    acc.add(hits[sel], pid, cls, k, c, cok)
        if progress is not None:
            progress(step, len(windows))

    # parcels that hold no pixel centre: count the pixels they touch, one small window each
    fallback = np.nonzero(inside & (acc.n_pixels == 0))[0]
    for i in fallback:
        win = pixel_window(src, geoms[i].bounds, pad=1)
        h, w = int(win.height), int(win.width)
        if h <= 0 or w <= 0:
            continue
        wt = window_transform(win, src.transform)
        data = src.read(band, window=win)
        cls = index(data, valid_mask(src, band, data, win, folded))
        c, cok = conf.read(win) if conf is not None else (None, None)
        pid = rasterize([(geoms[i], 1)], out_shape=(h, w), transform=wt, fill=0, dtype="int32", all_touched=True)
        acc.add(np.array([i]), pid, cls, max(len(index), 1), c, cok)

    result = _finish(acc, index, n, fallback)
    result.blocks_read, result.overlap_layers, result.overlap_blocks = blocks_read, n_layers, overlap_blocks
    return result


def _finish(acc: _Accumulator, index: ClassIndex, n: int, fallback: np.ndarray) -> ZonalResult:
    values = np.array(index.values, np.int64)
    if acc.dense is not None:
        stats = _from_table(acc.dense[:, :len(values)], values)
    else:
        stats = _from_triplets(acc.parts, values, n)
    majority, fraction, entropy, n_valid, class_pixels, class_parcels = stats
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


def _from_table(table: np.ndarray, values: np.ndarray, chunk: int = 1 << 20) -> tuple[np.ndarray, ...]:
    """Per-parcel statistics from a dense count table (columns = classes in order of first appearance)."""
    n = table.shape[0]
    order = np.argsort(values)  # columns by class id, so argmax breaks ties towards the lower id
    sorted_values = values[order]
    majority = np.full(n, -1, np.int64)
    fraction = np.full(n, np.nan)
    entropy = np.full(n, np.nan)
    n_valid = np.zeros(n, np.int64)
    class_pixels = np.zeros(len(values), np.int64)
    step = max(1, chunk // max(len(values), 1))
    for r0 in range(0, n, step):
        t = table[r0:r0 + step][:, order].astype(np.int64)
        tot = t.sum(axis=1)
        has = tot > 0
        n_valid[r0:r0 + step] = tot
        class_pixels += t.sum(axis=0)
        if not has.any():
            continue
        best = t.argmax(axis=1)
        idx = np.nonzero(has)[0]
        majority[r0 + idx] = sorted_values[best[idx]]
        fraction[r0 + idx] = t[idx, best[idx]] / tot[idx]
        share = t[idx] / tot[idx, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            ent = -np.where(share > 0, share * np.log2(share), 0.0).sum(axis=1)
        entropy[r0 + idx] = np.abs(ent)
    back = np.empty_like(order)
    back[order] = np.arange(len(order))
    class_pixels = class_pixels[back]  # back to first-appearance order, as values
    lookup = {int(v): i for i, v in enumerate(values)}
    class_parcels = np.bincount([lookup[int(m)] for m in majority[majority >= 0]],
                                minlength=len(values)).astype(np.int64)
    return majority, fraction, entropy, n_valid, class_pixels, class_parcels


def _from_triplets(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], values: np.ndarray, n: int
                   ) -> tuple[np.ndarray, ...]:
    """Per-parcel statistics from (parcel, class, count) triplets (a parcel may appear in several)."""
    k = max(len(values), 1)
    majority = np.full(n, -1, np.int64)
    fraction = np.full(n, np.nan)
    entropy = np.full(n, np.nan)
    n_valid = np.zeros(n, np.int64)
    class_pixels = np.zeros(len(values), np.int64)
    class_parcels = np.zeros(len(values), np.int64)
    if not parts:
        return majority, fraction, entropy, n_valid, class_pixels, class_parcels
    p = np.concatenate([a for a, _, _ in parts]).astype(np.int64)
    c = np.concatenate([b for _, b, _ in parts]).astype(np.int64)
    cnt = np.concatenate([x for _, _, x in parts]).astype(np.int64)
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
    return majority, fraction, entropy, n_valid, class_pixels, class_parcels
