"""Class names and colours of a land-cover map, from wherever the map's producer put them.

Looked up in this order (the first source that names classes wins; colours are filled from any source):

1. a file given with ``--classes``: a ``model.json`` / ``dataset.json`` (``classes: [{id, name, colour}]``), a
   QGIS ``.qml`` style, or a JSON list of names (index = class id) or object ``{"id": "name"}``;
2. the map's own metadata: dataset tag ``CLASS_NAMES`` (JSON list, index = id, as ``eo-ssl predict`` writes it, or a
   JSON object id -> name), or ``CLASSES`` (JSON list of ``{id, name, colour}``), then the same tags on the band;
3. sidecars beside the map: ``MAP.qml`` (paletted / pseudo-colour renderer entries with labels) and ``MAP.tif.aux.xml``
   (GDAL category names);
4. a ``model.json`` in the map's folder (the package the map was predicted with);
5. nothing: a class is named by its id.

Colours come from the map's colour table first, then from the naming source, then from the project palette.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import rasterio

from backend.data.labels import class_colour
from backend.errors import EoSslError

ClassTable = dict[int, dict[str, Any]]


def _hex(rgba: tuple[int, ...]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgba[:3])


def _from_json_value(value: Any) -> ClassTable:
    """A class table from a parsed JSON value: list of names, {id: name}, list of {id, name, colour}, or a
    model.json / dataset.json document."""
    if isinstance(value, dict) and "classes" in value:
        value = value["classes"]
    table: ClassTable = {}
    if isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, dict):
                cid = int(item.get("id", item.get("value", i)))
                entry = {"name": str(item.get("name", item.get("label", cid)))}
                colour = item.get("colour", item.get("color"))
                if colour:
                    entry["colour"] = str(colour)
                table[cid] = entry
            elif item is not None:
                table[i] = {"name": str(item)}
    elif isinstance(value, dict):
        for k, v in value.items():
            try:
                table[int(k)] = {"name": str(v["name"] if isinstance(v, dict) else v)}
            except (TypeError, ValueError, KeyError):
                continue
    return table


def _from_qml(path: Path) -> ClassTable:
    """Entries of a QGIS raster style: paletted ``paletteEntry`` or pseudo-colour ``item`` elements."""
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError):
        return {}
    table: ClassTable = {}
    for tag in ("paletteEntry", "item"):
        for el in root.iter(tag):
            try:
                cid = int(float(el.get("value", "")))
            except ValueError:
                continue
            entry: dict[str, Any] = {"name": el.get("label") or str(cid)}
            if el.get("color"):
                entry["colour"] = el.get("color", "")[:7]
            table.setdefault(cid, entry)
    return table


def _from_aux_xml(path: Path, band: int) -> ClassTable:
    """GDAL PAM category names (``<CategoryNames><Category>``) of ``band``."""
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError):
        return {}
    for el in root.iter("PAMRasterBand"):
        if int(el.get("band", "1")) != band:
            continue
        cats = el.find("CategoryNames")
        if cats is None:
            return {}
        return {i: {"name": c.text} for i, c in enumerate(cats.findall("Category")) if c.text}
    return {}


def read_class_file(path: str | Path) -> ClassTable:
    path = Path(path)
    if not path.exists():
        raise EoSslError("input_not_found", f"Class file {path} does not exist.", "Check the --classes path.")
    if path.is_dir():
        path = path / "model.json"
    if path.suffix.lower() == ".qml":
        table = _from_qml(path)
    else:
        try:
            table = _from_json_value(json.loads(path.read_text()))
        except (json.JSONDecodeError, OSError, UnicodeDecodeError) as exc:
            raise EoSslError("bad_classes", f"Cannot read class names from {path}: {exc}",
                             "Give a model.json, dataset.json, .qml style or a JSON list of names.") from exc
    if not table:
        raise EoSslError("bad_classes", f"{path} names no classes.",
                         "Give a model.json, dataset.json, .qml style or a JSON list of names.")
    return table


def map_classes(src: rasterio.DatasetReader, map_path: Path, band: int = 1,
                classes_file: str | Path | None = None) -> tuple[ClassTable, str, dict[int, tuple[int, ...]]]:
    """(class table id -> {name, colour?}, where the names came from, the map's colour table or {})."""
    table: ClassTable = {}
    source = "class ids (no names found)"
    if classes_file:
        table, source = read_class_file(classes_file), str(classes_file)
    if not table:
        for tags, where in ((src.tags(), "map metadata"), (src.tags(band), "map band metadata")):
            for key in ("CLASS_NAMES", "CLASSES", "class_names", "classes"):
                if key in tags:
                    try:
                        table = _from_json_value(json.loads(tags[key]))
                    except json.JSONDecodeError:
                        table = {i: {"name": n.strip()} for i, n in enumerate(tags[key].split(",")) if n.strip()}
                    if table:
                        source = f"{where} ({key})"
                        break
            if table:
                break
    if not table:
        for path, reader in ((map_path.with_suffix(".qml"), _from_qml),
                             (map_path.with_name(map_path.name + ".aux.xml"), lambda p: _from_aux_xml(p, band)),
                             (map_path.with_name("model.json"), lambda p: _from_json_value(json.loads(p.read_text())))):
            if path.exists():
                try:
                    table = reader(path)
                except (json.JSONDecodeError, OSError):
                    table = {}
                if table:
                    source = str(path)
                    break
    try:
        colormap = src.colormap(band)
    except ValueError:  # no colour table
        colormap = {}
    for cid, rgba in colormap.items():
        if cid in table:
            table[cid]["colour"] = _hex(rgba)
    return table, source, dict(colormap)


def describe(table: ClassTable, cid: int, colormap: dict[int, tuple[int, ...]] | None = None,
             index: int | None = None) -> dict[str, Any]:
    """{id, name, colour} of class ``cid`` (named by its id when the table does not know it). ``index``: the
    class's position among the map's classes, for the fallback palette (ids such as crop codes 1200, 5100 would
    otherwise fall on the same palette colour)."""
    entry = table.get(cid, {})
    name = str(entry.get("name", cid))
    colour = entry.get("colour")
    if not colour and colormap and cid in colormap and len(colormap[cid]) >= 3 and any(colormap[cid][:3]):
        colour = _hex(colormap[cid])
    return {"id": int(cid), "name": name, "colour": colour or class_colour(name, int(cid) if index is None else index)}
