"""Class schemes (id, name, colour) and the renderers that show them.

A scheme comes from a model package (``model.json`` ``classes``), a dataset (``dataset.json``), a chip store
(``manifest.json`` ``labels.classes``), a plain JSON list ``[{"id": 0, "name": "forest", "colour": "#1b7837"}]``,
or a predicted map's ``.qml`` sidecar (the paletted renderer's entries).
"""

from __future__ import annotations

import colorsys
import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qgis.core import (
    QgsCategorizedSymbolRenderer,
    QgsFillSymbol,
    QgsProperty,
    QgsRendererCategory,
    QgsSymbol,
    QgsSymbolLayer,
    QgsWkbTypes,
)
from qgis.PyQt.QtGui import QColor


@dataclass(frozen=True)
class ClassDef:
    id: int
    name: str
    colour: str

    def qcolor(self) -> QColor:
        return QColor(self.colour)


def default_colour(index: int) -> str:
    """Distinct colours for schemes without any (golden-angle hues)."""
    h = (index * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, 0.65, 0.9)
    return f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"


def parse_classes(items: Any) -> list[ClassDef]:
    """``[{id, name, colour|color}]`` (ids default to the position, colours to distinct hues)."""
    if isinstance(items, dict):
        for key in ("classes",):
            if key in items:
                return parse_classes(items[key])
        labels = items.get("labels")
        if isinstance(labels, dict) and "classes" in labels:
            return parse_classes(labels["classes"])
        raise ValueError("no 'classes' list in this JSON")
    if not isinstance(items, list) or not items:
        raise ValueError("the class list is empty")
    out = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, dict) or "name" not in item:
            raise ValueError(f"class #{i} has no name: {item!r}")
        colour = item.get("colour") or item.get("color") or default_colour(i)
        out.append(ClassDef(int(item.get("id", i)), str(item["name"]), str(colour)))
    ids = [c.id for c in out]
    if len(set(ids)) != len(ids):
        raise ValueError("class ids are not unique")
    return out


def classes_from_qml(path: Path) -> list[ClassDef]:
    """Entries of a paletted (or discrete pseudo-colour) raster style."""
    root = ET.parse(path).getroot()
    out = []
    for entry in root.iter("paletteEntry"):
        out.append(ClassDef(int(float(entry.get("value", "0"))), entry.get("label") or entry.get("value", ""),
                            entry.get("color", "#000000")))
    if not out:
        for item in root.iter("item"):  # colorrampshader items
            out.append(ClassDef(int(float(item.get("value", "0"))), item.get("label") or item.get("value", ""),
                                item.get("color", "#000000")))
    if not out:
        raise ValueError(f"{path} has no palette entries")
    return out


def load_scheme(path: str | Path) -> list[ClassDef]:
    """A class scheme from a model package folder, a JSON file, a .qml style or a raster with a .qml sidecar."""
    p = Path(path)
    if p.is_dir():
        for name in ("model.json", "dataset.json", "manifest.json"):
            if (p / name).is_file():
                return load_scheme(p / name)
        raise ValueError(f"{p} has no model.json / dataset.json / manifest.json")
    suffix = p.suffix.lower()
    if suffix == ".json":
        return parse_classes(json.loads(p.read_text(encoding="utf-8")))
    if suffix == ".qml":
        return classes_from_qml(p)
    sidecar = p.with_suffix(".qml")
    if sidecar.is_file():
        return classes_from_qml(sidecar)
    raise ValueError(f"cannot read a class scheme from {p}")


def mark_uncertain(symbol, status_field: str) -> None:
    """Outline parcels whose status is 'uncertain' in thick dashed orange (data-defined on every symbol layer)."""
    is_uncertain = f"\"{status_field}\" = 'uncertain'"
    for layer in symbol.symbolLayers():
        layer.setDataDefinedProperty(QgsSymbolLayer.PropertyStrokeColor, QgsProperty.fromExpression(
            f"CASE WHEN {is_uncertain} THEN '255,127,0,255' ELSE '60,60,60,255' END"))
        layer.setDataDefinedProperty(QgsSymbolLayer.PropertyStrokeWidth, QgsProperty.fromExpression(
            f"CASE WHEN {is_uncertain} THEN 0.8 ELSE 0.26 END"))
        layer.setDataDefinedProperty(QgsSymbolLayer.PropertyStrokeStyle, QgsProperty.fromExpression(
            f"CASE WHEN {is_uncertain} THEN 'dash' ELSE 'solid' END"))


def categorized_renderer(field: str, scheme: list[ClassDef], geometry_type=QgsWkbTypes.PolygonGeometry,
                         by: str = "id", opacity: float = 0.75,
                         status_field: str | None = None) -> QgsCategorizedSymbolRenderer:
    """One category per class (value = class id or name), the class colour as fill, plus an 'unlabelled'
    category (no fill, grey outline) for empty values. With ``status_field`` (a label-parcels output), uncertain
    parcels get a thick dashed orange outline."""
    categories = []
    for cls in scheme:
        symbol = QgsSymbol.defaultSymbol(geometry_type)
        symbol.setColor(cls.qcolor())
        symbol.setOpacity(opacity)
        if status_field and geometry_type == QgsWkbTypes.PolygonGeometry:
            mark_uncertain(symbol, status_field)
        value = cls.id if by == "id" else cls.name
        categories.append(QgsRendererCategory(value, symbol, f"{cls.id}: {cls.name}" if by == "id" else cls.name))
    if geometry_type == QgsWkbTypes.PolygonGeometry:
        empty = QgsFillSymbol.createSimple({"color": "0,0,0,0", "outline_color": "120,120,120,255",
                                            "outline_width": "0.4", "outline_style": "dash"})
    else:
        empty = QgsSymbol.defaultSymbol(geometry_type)
        empty.setColor(QColor("#9e9e9e"))
    categories.append(QgsRendererCategory(None, empty, "unlabelled"))
    return QgsCategorizedSymbolRenderer(field, categories)
