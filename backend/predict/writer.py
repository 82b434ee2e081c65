"""Streaming raster output: rows in, a Cloud-Optimised GeoTIFF out, complete or not at all.

Rows arrive top to bottom as the tiled inference finishes them. They are buffered until a whole row of 512 x 512
blocks is complete and then written as one strip of blocks into a tiled GeoTIFF (the "part"), so no block is ever
rewritten and memory holds at most one row of blocks. :meth:`RasterSink.finish` turns that file into a COG (GDAL's
COG driver: 512 px tiles, deflate, overviews, header first) under a temporary name; :class:`backend.outputs.Output`
renames it into place. A killed run leaves only ``.NAME.part-PID`` / ``.tmp-PID`` files (swept by the next run), never
a file with the output's name that looks finished.

A single-band part is written uncompressed: the COG copy compresses every block anyway, and compressing the part too
cost more than it saved (on the project's 2 cores, a 2048-row strip of a Sentinel-2 tile's map + confidence: part
writes 0.81 s deflated vs 0.09 s raw, COG copies 2.6 s from either; ``benchmarks/results/predict.md``). A
multi-band part (an embedding: up to hundreds of float bands) stays deflated, for the disk's sake. GDAL's COG driver
writes only by copying a whole source, and a COG's header, overviews and blocks must come in that order: there is no
direct streamed write of one, so the part and the copy stay; the copy is the last stage of the run.

:class:`WriteBehind` runs the writes in a thread of their own, so that the next row of tiles is computed meanwhile.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.shutil import copy as rio_copy
from rasterio.windows import Window

from backend.data.grid import Grid
from backend.disk import disk_full_error, is_disk_full
from backend.errors import EoSslError
from backend.output_paths import temp_path
from backend.predict import vrt

BLOCK = 512
CLASS_NODATA = 255
CONFIDENCE_NODATA = -1.0
#: DEFLATE level of the COGs (see the module docstring)
COG_LEVEL = 6


def hex_to_rgba(colour: str) -> tuple[int, int, int, int]:
    c = colour.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16), 255


def reduce_mode(x: np.ndarray, nodata: float) -> np.ndarray:
    """(count, 2h, 2w) -> (count, h, w): the most frequent valid value of each 2 x 2 block (ties: the first in
    row-major order; nodata only where all four are)."""
    vals = np.stack([x[..., 0::2, 0::2], x[..., 0::2, 1::2], x[..., 1::2, 0::2], x[..., 1::2, 1::2]])
    counts = (vals[:, None] == vals[None, :]).sum(axis=1, dtype=np.uint8)
    counts[vals == nodata] = 0
    return np.take_along_axis(vals, counts.argmax(axis=0)[None], axis=0)[0]


def reduce_average(x: np.ndarray, nodata: float) -> np.ndarray:
    """(count, 2h, 2w) -> (count, h, w): the mean of the valid values of each 2 x 2 block (nodata where none is)."""
    ok = ~np.isnan(x) if np.isnan(nodata) else x != nodata
    v = np.where(ok, x, 0).astype(np.float64 if x.dtype.itemsize > 4 else np.float32)
    total = v[..., 0::2, 0::2] + v[..., 0::2, 1::2] + v[..., 1::2, 0::2] + v[..., 1::2, 1::2]
    n = (ok[..., 0::2, 0::2].astype(np.uint8) + ok[..., 0::2, 1::2] + ok[..., 1::2, 0::2] + ok[..., 1::2, 1::2])
    mean = total / np.maximum(n, 1)
    if x.dtype.kind in "iu":
        mean = np.rint(mean)
    return np.where(n > 0, mean, nodata).astype(x.dtype)


REDUCE = {"mode": reduce_mode, "average": reduce_average}


class RasterSink:
    """Output of ``count`` bands on ``grid``; :meth:`write_rows` takes consecutive full-width rows from the top.

    ``scales``/``offsets`` (per band) are GDAL's: the value a reader sees is ``stored * scale + offset``.
    ``overviews`` (``mode`` for classes, ``average`` for continuous values): each overview level (2x, 4x, ... until
    it fits in one block, as GDAL's COG driver would choose) is reduced from the level above as the rows arrive,
    into a part of its own; :meth:`finish` hands them to the COG driver, which then copies them instead of reading the
    whole raster back to compute them."""

    def __init__(self, path: str | Path, grid: Grid, dtype: str, nodata: float, *, block: int = BLOCK,
                 colormap: dict[int, tuple[int, int, int, int]] | None = None, tags: dict[str, str] | None = None,
                 description: str | None = None, count: int = 1, descriptions: Sequence[str] | None = None,
                 scales: Sequence[float] | None = None, offsets: Sequence[float] | None = None,
                 overviews: str | None = "average", part: Path | None = None, factor: int = 1) -> None:
        self.path = Path(path)
        self.grid, self.dtype, self.nodata, self.block = grid, np.dtype(dtype), nodata, block
        self.count = count
        self.colormap, self.tags = colormap, dict(tags or {})
        self.descriptions = list(descriptions or []) or ([description] if description else [])
        self.scales, self.offsets = scales, offsets
        self.part = part or temp_path(self.path, "part")
        self.cog = temp_path(self.path, "tmp")  # backend.outputs.Output's temporary: it commits this file
        self.vrt = self.part.with_suffix(".vrt")
        profile = dict(driver="GTiff", width=grid.width, height=grid.height, count=count, dtype=self.dtype.name,
                       crs=grid.rasterio_crs(), transform=grid.transform, nodata=nodata, tiled=True,
                       blockxsize=block, blockysize=block, BIGTIFF="IF_SAFER")
        if count > 1:  # see the module docstring
            profile.update(compress="deflate", zlevel=1, NUM_THREADS="ALL_CPUS")
            if self.dtype.kind == "f":
                profile["predictor"] = 3
        try:
            self.dst = rasterio.open(self.part, "w", **profile)
        except rasterio.errors.RasterioIOError as exc:
            if is_disk_full(exc):
                raise disk_full_error(self.path) from exc
            raise EoSslError("output_not_writable", f"Cannot write {self.path}: {exc}",
                             "Pick an output path in a folder you can write to.") from exc
        self.buffer = np.full((count, min(block, grid.height), grid.width), nodata, self.dtype)
        self.buffer_row0 = 0  # grid row of buffer row 0
        self.next_row = 0
        #: the next overview level (half the size), fed by :meth:`write_rows`
        self.child: RasterSink | None = None
        self.reduce = REDUCE[overviews] if overviews else None
        self.carry: np.ndarray | None = None  # an odd last row, waiting for its pair
        if overviews and max(grid.width, grid.height) > block:
            half = Grid(grid.crs, grid.transform @ Affine.scale(2), -(-grid.width // 2), -(-grid.height // 2))
            root = temp_path(self.path, "part")
            self.child = RasterSink(self.path, half, dtype, nodata, block=block, count=count, overviews=overviews,
                                    part=root.with_name(f"{root.stem}.ovr{factor * 2}{root.suffix}"),
                                    factor=factor * 2)

    def write_rows(self, rows: np.ndarray) -> None:
        """Append ``rows`` ((n, width), or (count, n, width)) below the rows written so far; full block rows go to
        disk at once, and reduced pairs of rows to the next overview level."""
        if rows.ndim == 2:
            rows = rows[None]
        n = rows.shape[1]
        done = 0
        while done < n:
            offset = self.next_row - self.buffer_row0
            take = min(n - done, self.buffer.shape[1] - offset)
            self.buffer[:, offset:offset + take] = rows[:, done:done + take]
            done += take
            self.next_row += take
            if self.next_row - self.buffer_row0 == self.buffer.shape[1] or self.next_row == self.grid.height:
                self._flush()
        if self.child is not None:
            self._feed_child(rows)

    def _feed_child(self, rows: np.ndarray) -> None:
        if self.carry is not None:
            rows = np.concatenate([self.carry, rows], axis=1)
            self.carry = None
        last = self.next_row == self.grid.height
        if rows.shape[1] % 2:
            if not last:
                self.carry, rows = rows[:, -1:].copy(), rows[:, :-1]
            else:  # the grid's last, odd row: paired with nodata
                rows = np.concatenate([rows, np.full_like(rows[:, :1], self.nodata)], axis=1)
        if rows.shape[2] % 2:
            rows = np.concatenate([rows, np.full_like(rows[:, :, :1], self.nodata)], axis=2)
        if rows.shape[1]:
            assert self.child is not None and self.reduce is not None
            self.child.write_rows(self.reduce(rows, self.nodata))

    def _flush(self) -> None:
        n = self.next_row - self.buffer_row0
        if n <= 0:
            return
        self.dst.write(self.buffer[:, :n], window=Window(0, self.buffer_row0, self.grid.width, n))
        self.buffer_row0 = self.next_row
        self.buffer[:] = self.nodata
        rows_left = self.grid.height - self.buffer_row0
        if 0 < rows_left < self.buffer.shape[1]:
            self.buffer = self.buffer[:, :rows_left]

    def _levels(self) -> list[RasterSink]:
        out, sink = [], self.child
        while sink is not None:
            out.append(sink)
            sink = sink.child
        return out

    def finish(self, resampling: str = "NEAREST") -> Path:
        """Close and copy to a COG under a temporary name (returned; :class:`backend.outputs.Output` renames it into
        place), through a VRT of the part and its overview levels carrying the metadata. ``resampling``: of
        overviews GDAL computes itself (only when :attr:`overviews` was None)."""
        if self.next_row != self.grid.height:
            raise RuntimeError(f"{self.path}: {self.next_row} of {self.grid.height} rows written")
        levels = self._levels()
        for sink in (self, *levels):
            if sink.next_row != sink.grid.height:
                raise RuntimeError(f"{sink.part}: {sink.next_row} of {sink.grid.height} rows written")
            sink.dst.close()
        bands = [vrt.Band(self.dtype.name, [vrt.Source(self.part, i)], nodata=self.nodata,
                          description=self.descriptions[i - 1] if i <= len(self.descriptions) else None,
                          colormap=self.colormap if i == 1 else None,
                          scale=self.scales[i - 1] if self.scales is not None else None,
                          offset=self.offsets[i - 1] if self.offsets is not None else None,
                          overviews=[vrt.Source(level.part, i) for level in levels])
                 for i in range(1, self.count + 1)]
        vrt.write_vrt(self.vrt, self.grid.width, self.grid.height, self.grid.crs.to_wkt(), self.grid.transform, bands,
                      self.tags)
        options: dict[str, Any] = dict(COMPRESS="DEFLATE", LEVEL=COG_LEVEL, BLOCKSIZE=self.block,
                                       NUM_THREADS="ALL_CPUS", BIGTIFF="IF_SAFER")
        if self.reduce is not None:
            options["OVERVIEWS"] = "FORCE_USE_EXISTING" if levels else "NONE"
        else:
            options["OVERVIEW_RESAMPLING"] = resampling
        if self.dtype.kind == "f":
            options["PREDICTOR"] = "YES"
        rio_copy(str(self.vrt), str(self.cog), driver="COG", **options)
        self._remove_parts()
        return self.cog

    def _remove_parts(self) -> None:
        for sink in (self, *self._levels()):
            sink.part.unlink(missing_ok=True)
            Path(str(sink.part) + ".aux.xml").unlink(missing_ok=True)
        self.vrt.unlink(missing_ok=True)

    def abort(self) -> None:
        """Close and remove every temporary file (a cancelled or failed run leaves nothing behind)."""
        try:
            for sink in (self, *self._levels()):
                if not sink.dst.closed:
                    sink.dst.close()
        finally:
            self._remove_parts()
            for f in (self.cog, Path(str(self.cog) + ".aux.xml")):
                f.unlink(missing_ok=True)


class WriteBehind:
    """Calls ``write(*args)`` in a thread of its own, in order, at most ``depth`` calls behind the caller.

    GDAL releases the GIL while it encodes and writes blocks, so the caller computes the next rows meanwhile. An
    exception in the thread is raised by the next call or by :meth:`close`. ``busy_s``: seconds spent writing."""

    _END = object()

    def __init__(self, write: Callable[..., None], depth: int = 2) -> None:
        self.write = write
        self.queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self.error: BaseException | None = None
        self.busy_s = 0.0
        self.thread = threading.Thread(target=self._run, name="eo-ssl-write-behind", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is self._END:
                return
            if self.error is not None:
                continue  # drain: the caller learns of the error on its next call
            t0 = time.perf_counter()
            try:
                self.write(*item)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                self.error = exc
            self.busy_s += time.perf_counter() - t0

    def _raise(self) -> None:
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    def __call__(self, *args: object) -> None:
        self._raise()
        self.queue.put(args)

    def close(self) -> None:
        """Wait for every write to finish; raise the first error, if any."""
        if self.thread.is_alive():
            self.queue.put(self._END)
            self.thread.join()
        self._raise()


def class_metadata(classes: Sequence[dict[str, Any]], extra: dict[str, Any] | None = None
                   ) -> tuple[dict[int, tuple[int, int, int, int]], dict[str, str], str]:
    """(colour table, dataset tags, band description) of a class map."""
    colormap = {int(c["id"]): hex_to_rgba(str(c["colour"])) for c in classes}
    colormap[CLASS_NODATA] = (0, 0, 0, 0)
    names = [""] * (max(int(c["id"]) for c in classes) + 1)
    for c in classes:
        names[int(c["id"])] = str(c["name"])
    tags = {"CLASS_NAMES": json.dumps(names),
            "CLASSES": json.dumps([{"id": int(c["id"]), "name": c["name"], "colour": c["colour"]} for c in classes])}
    for k, v in (extra or {}).items():
        tags[k] = v if isinstance(v, str) else json.dumps(v)
    description = "class: " + ", ".join(f"{int(c['id'])} {c['name']}" for c in classes)
    return colormap, tags, description
