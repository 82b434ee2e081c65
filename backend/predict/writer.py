"""Streaming raster output: rows in, a Cloud-Optimised GeoTIFF out, complete or not at all.

Rows arrive top to bottom as the tiled inference finishes them. They are buffered until a whole row of 512 x 512
blocks is complete and then written as one strip of blocks into a tiled, deflate-compressed GeoTIFF, so no
compressed block is ever rewritten and memory holds at most one row of blocks. :meth:`RasterSink.finish` turns that
file into a COG (GDAL's COG driver: 512 px tiles, deflate, overviews, header first) under a temporary name;
:class:`backend.outputs.Output` renames it into place. A killed run leaves only ``.NAME.part-PID`` / ``.tmp-PID``
files (swept by the next run), never a file with the output's name that looks finished.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.shutil import copy as rio_copy
from rasterio.windows import Window

from backend.data.grid import Grid
from backend.errors import EoSslError
from backend.outputs import disk_full_error, is_disk_full, temp_path

BLOCK = 512
CLASS_NODATA = 255
CONFIDENCE_NODATA = -1.0


def hex_to_rgba(colour: str) -> tuple[int, int, int, int]:
    c = colour.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16), 255


class RasterSink:
    """Output of ``count`` bands on ``grid``; :meth:`write_rows` takes consecutive full-width rows from the top.

    ``scales``/``offsets`` (per band) are GDAL's: the value a reader sees is ``stored * scale + offset``."""

    def __init__(self, path: str | Path, grid: Grid, dtype: str, nodata: float, *, block: int = BLOCK,
                 colormap: dict[int, tuple[int, int, int, int]] | None = None, tags: dict[str, str] | None = None,
                 description: str | None = None, count: int = 1, descriptions: Sequence[str] | None = None,
                 scales: Sequence[float] | None = None, offsets: Sequence[float] | None = None) -> None:
        self.path = Path(path)
        self.grid, self.dtype, self.nodata, self.block = grid, np.dtype(dtype), nodata, block
        self.count = count
        self.part = temp_path(self.path, "part")
        self.cog = temp_path(self.path, "tmp")  # backend.outputs.Output's temporary: it commits this file
        profile = dict(driver="GTiff", width=grid.width, height=grid.height, count=count, dtype=self.dtype.name,
                       crs=grid.rasterio_crs(), transform=grid.transform, nodata=nodata, tiled=True,
                       blockxsize=block, blockysize=block, compress="deflate", zlevel=1, BIGTIFF="IF_SAFER",
                       NUM_THREADS="ALL_CPUS")  # blocks compressed in parallel: the writes run on the main thread
        if self.dtype.kind == "f":
            profile["predictor"] = 3
        try:
            self.dst = rasterio.open(self.part, "w", **profile)
        except rasterio.errors.RasterioIOError as exc:
            if is_disk_full(exc):
                raise disk_full_error(self.path) from exc
            raise EoSslError("output_not_writable", f"Cannot write {self.path}: {exc}",
                             "Pick an output path in a folder you can write to.") from exc
        # metadata before any pixel: libtiff cannot change the photometric tag (palette) once data are written
        if colormap:
            self.dst.write_colormap(1, colormap)
        if tags:
            self.dst.update_tags(**tags)
        if description:
            self.dst.set_band_description(1, description)
        for i, text in enumerate(descriptions or [], start=1):
            self.dst.set_band_description(i, text)
        if scales is not None:
            self.dst.scales = tuple(float(v) for v in scales)
        if offsets is not None:
            self.dst.offsets = tuple(float(v) for v in offsets)
        self.buffer = np.full((count, min(block, grid.height), grid.width), nodata, self.dtype)
        self.buffer_row0 = 0  # grid row of buffer row 0
        self.next_row = 0

    def write_rows(self, rows: np.ndarray) -> None:
        """Append ``rows`` ((n, width), or (count, n, width)) below the rows written so far; full block rows go to
        disk at once."""
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

    def finish(self, resampling: str = "NEAREST") -> Path:
        """Close and copy to a COG under a temporary name (returned; :class:`backend.outputs.Output` renames it into
        place). ``resampling``: of the overviews (MODE for classes, AVERAGE for continuous values)."""
        if self.next_row != self.grid.height:
            raise RuntimeError(f"{self.path}: {self.next_row} of {self.grid.height} rows written")
        self.dst.close()
        options: dict[str, Any] = dict(COMPRESS="DEFLATE", BLOCKSIZE=self.block, OVERVIEW_RESAMPLING=resampling,
                                       NUM_THREADS="ALL_CPUS", BIGTIFF="IF_SAFER")
        if self.dtype.kind == "f":
            options["PREDICTOR"] = "YES"
        rio_copy(str(self.part), str(self.cog), driver="COG", **options)
        self.part.unlink(missing_ok=True)
        return self.cog

    def abort(self) -> None:
        """Close and remove every temporary file (a cancelled or failed run leaves nothing behind)."""
        try:
            if not self.dst.closed:
                self.dst.close()
        finally:
            for f in (self.part, self.cog, Path(str(self.part) + ".aux.xml"), Path(str(self.cog) + ".aux.xml")):
                f.unlink(missing_ok=True)


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
