"""GDAL virtual rasters (VRT XML), written without GDAL's Python bindings: a raster assembled from parts, with the
colour table, class names, descriptions, scales and nodata of a finished output.

Two uses: :class:`backend.predict.writer.RasterSink` hands the COG driver its full-resolution part and the overview
levels it computed while the rows streamed in (``<Overview>`` elements; the driver copies them instead of computing
them again), and :mod:`backend.predict.region` writes the mosaic of the maps of many scenes (one ``SimpleSource`` per
scene at its place on the mosaic's grid). The format is GDAL's (https://gdal.org/drivers/raster/vrt.html).
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from affine import Affine

GDAL_TYPES = {"uint8": "Byte", "int8": "Int8", "uint16": "UInt16", "int16": "Int16", "uint32": "UInt32",
              "int32": "Int32", "float32": "Float32", "float64": "Float64"}


@dataclass
class Source:
    """Band ``band`` of the raster at ``path``, read from ``src`` (x, y, width, height in its own pixels) and put at
    ``dst`` (x, y, width, height in the VRT's pixels); None for both: the whole source on the whole VRT (GDAL needs
    ``src`` whenever ``dst`` is given)."""

    path: Path
    band: int = 1
    dst: tuple[float, float, float, float] | None = None
    src: tuple[int, int, int, int] | None = None


@dataclass
class Band:
    dtype: str
    sources: list[Source]
    nodata: float | None = None
    description: str | None = None
    colormap: dict[int, tuple[int, int, int, int]] | None = None
    scale: float | None = None
    offset: float | None = None
    #: overview levels, largest first: one source each (the whole raster of that level)
    overviews: list[Source] = field(default_factory=list)
    #: raster attribute: class names by value (GDAL's CategoryNames; QGIS and gdalinfo show them)
    categories: list[str] | None = None


def _number(v: float) -> str:
    return "nan" if isinstance(v, float) and np.isnan(v) else repr(float(v)) if not float(v).is_integer() \
        else str(int(v))


def _source(parent: ET.Element, tag: str, s: Source, nodata: float | None, vrt_dir: Path) -> None:
    el = ET.SubElement(parent, tag)
    rel = os.path.relpath(s.path, vrt_dir) if Path(s.path).is_absolute() else str(s.path)
    relative = not rel.startswith("..")
    ET.SubElement(el, "SourceFilename", relativeToVRT="1" if relative else "0").text = \
        rel if relative else str(Path(s.path).resolve())
    ET.SubElement(el, "SourceBand").text = str(s.band)
    if s.src is not None:
        x, y, w, h = s.src
        ET.SubElement(el, "SrcRect", xOff=str(x), yOff=str(y), xSize=str(w), ySize=str(h))
    if s.dst is not None:
        x, y, w, h = s.dst
        ET.SubElement(el, "DstRect", xOff=_number(x), yOff=_number(y), xSize=_number(w), ySize=_number(h))
    if tag == "ComplexSource" and nodata is not None:
        ET.SubElement(el, "NODATA").text = _number(nodata)


def write_vrt(path: str | Path, width: int, height: int, crs_wkt: str, transform: Affine, bands: Sequence[Band],
              tags: dict[str, str] | None = None) -> Path:
    """Write the VRT at ``path`` (sources given as absolute paths are written relative to it when they lie beside or
    below it, so the folder can be moved). Several sources of a band that may overlap are ComplexSources with the
    nodata value: a later source's nodata pixels do not hide an earlier one's data."""
    path = Path(path)
    root = ET.Element("VRTDataset", rasterXSize=str(width), rasterYSize=str(height))
    ET.SubElement(root, "SRS").text = crs_wkt
    ET.SubElement(root, "GeoTransform").text = ", ".join(repr(float(v)) for v in transform.to_gdal())
    if tags:
        md = ET.SubElement(root, "Metadata")
        for k, v in tags.items():
            ET.SubElement(md, "MDI", key=k).text = v
    for i, b in enumerate(bands, start=1):
        el = ET.SubElement(root, "VRTRasterBand", dataType=GDAL_TYPES[np.dtype(b.dtype).name], band=str(i))
        if b.description:
            ET.SubElement(el, "Description").text = b.description
        if b.nodata is not None:
            ET.SubElement(el, "NoDataValue").text = _number(b.nodata)
        if b.scale is not None:
            ET.SubElement(el, "Scale").text = repr(float(b.scale))
        if b.offset is not None:
            ET.SubElement(el, "Offset").text = repr(float(b.offset))
        if b.categories:
            cats = ET.SubElement(el, "CategoryNames")
            for name in b.categories:
                ET.SubElement(cats, "Category").text = name
        if b.colormap:
            ET.SubElement(el, "ColorInterp").text = "Palette"
            table = ET.SubElement(el, "ColorTable")
            for v in range(max(b.colormap) + 1):
                c = b.colormap.get(v, (0, 0, 0, 0))
                ET.SubElement(table, "Entry", c1=str(c[0]), c2=str(c[1]), c3=str(c[2]), c4=str(c[3]))
        tag = "ComplexSource" if len(b.sources) > 1 else "SimpleSource"
        for s in b.sources:
            _source(el, tag, s, b.nodata, path.parent)
        for s in b.overviews:
            _source(el, "Overview", s, None, path.parent)
    ET.indent(root, space=" ")
    path.write_text(ET.tostring(root, encoding="unicode") + "\n", encoding="utf-8")
    return path
