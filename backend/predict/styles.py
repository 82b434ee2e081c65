"""QGIS styles (``.qml``) for prediction outputs, written as plain XML in QGIS 3.22's format.

The class map gets a *paletted* renderer whose entries are the classes (value, colour, label): QGIS shows the legend
with the class names, and ``backend.parcels.map_legend`` reads the names back from it. The confidence raster gets a
single-band pseudo-colour renderer (Viridis, 0..1). Written by hand so the backend never needs QGIS.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from backend.disk import apply_umask
from backend.output_paths import temp_path
from backend.outputs import QML_MARK

QGIS_VERSION = "3.22.0-Białowieża"
VIRIDIS = ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"]


def _root() -> ET.Element:
    return ET.Element("qgis", {"version": QGIS_VERSION, "styleCategories": "AllStyleCategories",
                               "hasScaleBasedVisibilityFlag": "0", "minScale": "1e+08", "maxScale": "0"})


def _pipe_common(root: ET.Element, pipe: ET.Element, renderer: ET.Element) -> None:
    ET.SubElement(pipe, "brightnesscontrast", {"brightness": "0", "contrast": "0", "gamma": "1"})
    ET.SubElement(pipe, "huesaturation", {"saturation": "0", "grayscaleMode": "0", "colorizeOn": "0",
                                          "colorizeRed": "255", "colorizeGreen": "128", "colorizeBlue": "128",
                                          "colorizeStrength": "100", "invertColors": "0"})
    ET.SubElement(pipe, "rasterresampler", {"maxOversampling": "2"})
    ET.SubElement(pipe, "resamplingStage").text = "resamplingFilter"
    ET.SubElement(root, "blendMode").text = "0"


def _provider(pipe: ET.Element) -> None:
    provider = ET.SubElement(pipe, "provider")
    ET.SubElement(provider, "resampling", {"enabled": "false", "maxOversampling": "2",
                                           "zoomedInResamplingMethod": "nearestNeighbour",
                                           "zoomedOutResamplingMethod": "nearestNeighbour"})


def _renderer(kind: str, band: int, **extra: str) -> tuple[ET.Element, ET.Element, ET.Element]:
    """(root, pipe, renderer) of a style whose raster renderer is of type ``kind`` on ``band`` (plus the attributes
    ``extra``), opaque, no alpha band, with QGIS's default min/max origin."""
    root = _root()
    pipe = ET.SubElement(root, "pipe")
    _provider(pipe)
    renderer = ET.SubElement(pipe, "rasterrenderer", {"type": kind, "band": str(band), "opacity": "1",
                                                      "alphaBand": "-1", "nodataColor": "", **extra})
    ET.SubElement(renderer, "rasterTransparency")
    origin = ET.SubElement(renderer, "minMaxOrigin")
    for tag, text in (("limits", "None"), ("extent", "WholeRaster"), ("statAccuracy", "Estimated"),
                      ("cumulativeCutLower", "0.02"), ("cumulativeCutUpper", "0.98"), ("stdDevFactor", "2")):
        ET.SubElement(origin, tag).text = text
    return root, pipe, renderer


def _write(root: ET.Element, path: Path) -> Path:
    """Pretty-printed, with QGIS's doctype; written to a temporary name and renamed."""
    ET.indent(root, space="  ")
    text = (f"<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n{QML_MARK}\n"
            + ET.tostring(root, encoding="unicode"))
    path = Path(path)
    tmp = temp_path(path)
    tmp.write_text(text + "\n", encoding="utf-8")
    apply_umask(tmp)
    os.replace(tmp, path)  # an existing style was checked to be eo-ssl's (backend.outputs.Output's sidecars)
    return path


def paletted_qml(classes: Sequence[dict[str, Any]], path: str | Path, band: int = 1) -> Path:
    """A paletted style: one entry per class (``id``, ``name``, ``colour`` as #rrggbb); nodata stays transparent."""
    root, pipe, renderer = _renderer("paletted", band)
    palette = ET.SubElement(renderer, "colorPalette")
    for c in classes:
        ET.SubElement(palette, "paletteEntry", {"value": str(int(c["id"])), "color": str(c["colour"]).lower(),
                                                "alpha": "255", "label": str(c["name"])})
    _pipe_common(root, pipe, renderer)
    return _write(root, Path(path))


def confidence_qml(path: str | Path, band: int = 1, lo: float = 0.0, hi: float = 1.0) -> Path:
    """A pseudo-colour style for the confidence raster (max softmax, 0..1; Viridis, dark = unsure); ``lo``/``hi``:
    another range (a similarity raster's)."""
    root, pipe, renderer = _renderer("singlebandpseudocolor", band, classificationMin=f"{lo:g}",
                                     classificationMax=f"{hi:g}")
    shader = ET.SubElement(renderer, "rastershader")
    fn = ET.SubElement(shader, "colorrampshader", {
        "colorRampType": "INTERPOLATED", "classificationMode": "2", "clip": "0", "minimumValue": f"{lo:g}",
        "maximumValue": f"{hi:g}", "labelPrecision": "2"})
    ramp = ET.SubElement(fn, "colorramp", {"name": "[source]", "type": "gradient"})
    for k, v in (("color1", "68,1,84,255"), ("color2", "253,231,37,255"), ("discrete", "0"),
                 ("rampType", "gradient"),
                 ("stops", "0.25;59,82,139,255:0.5;33,145,140,255:0.75;94,201,98,255")):
        ET.SubElement(ramp, "prop", {"k": k, "v": v})
    for i, colour in enumerate(VIRIDIS):
        value = lo + (hi - lo) * i / (len(VIRIDIS) - 1)
        ET.SubElement(fn, "item", {"value": f"{value:g}", "color": colour, "alpha": "255", "label": f"{value:.2f}"})
    _pipe_common(root, pipe, renderer)
    return _write(root, Path(path))
