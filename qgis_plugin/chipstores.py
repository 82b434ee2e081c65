"""The dialog's chip stores in the cache folder, keyed by what they were prepared from, so that running the dialog
again (another method, more epochs, Resume) reuses the store instead of preparing the same data again.

The key is a hash of the inputs as the dialog gives them to *1 Prepare data*: each raster layer's files with their
size and modification time, the area of interest (a layer's file and subset, the selected feature ids, or the
extent), the period of interest, the parcels and their class field, and the plugin version. A changed file, another
selection, another period: another key, a new store. Inputs that cannot be fingerprinted (a memory layer, a layer
with unsaved edits) give no key, and the data are prepared again every time.

Layout: ``<cache>/chipstores/<key>/`` (the chip store) and ``<cache>/chipstores/<key>.json`` (what it was prepared
from, for people).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from qgis.core import QgsMapLayer, QgsMapLayerType, QgsProviderRegistry

from .paths import plugin_version

FOLDER = "chipstores"


class NotReusable(Exception):
    """An input the dialog cannot fingerprint (the store is prepared again)."""


def _file_stat(path: str) -> list[Any]:
    st = os.stat(path)
    return [os.path.abspath(path), st.st_size, st.st_mtime_ns]


def layer_signature(layer: QgsMapLayer) -> dict[str, Any]:
    """What a layer's data are: its provider, its files (size and time) and its subset string."""
    if layer is None:
        raise NotReusable("no layer")
    if layer.type() == QgsMapLayerType.VectorLayer and layer.isEditable() and layer.isModified():
        raise NotReusable(f"{layer.name()} has unsaved edits")
    parts = QgsProviderRegistry.instance().decodeUri(layer.providerType(), layer.source())
    path = parts.get("path") or ""
    if not path or not os.path.exists(path):
        raise NotReusable(f"{layer.name()} is not a file layer")
    files = [_file_stat(path)] if os.path.isfile(path) else [
        _file_stat(str(p)) for p in sorted(Path(path).rglob("*")) if p.is_file()]
    signature: dict[str, Any] = {"provider": layer.providerType(), "files": files,
                                 "layer": parts.get("layerName") or parts.get("layerId") or None}
    if layer.type() == QgsMapLayerType.VectorLayer:
        signature["subset"] = layer.subsetString()
    return signature


def key(description: dict[str, Any]) -> str:
    """The folder name of the store for these inputs."""
    text = json.dumps({"plugin": plugin_version(), **description}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def store_path(cache: Path, store_key: str) -> Path:
    return Path(cache) / FOLDER / store_key


def existing(store: Path) -> dict[str, Any] | None:
    """The manifest of a complete chip store at ``store`` (prepare writes it last, then renames the folder), or
    None."""
    try:
        manifest = json.loads((store / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and manifest.get("format") == "eo-ssl-chipstore" else None


def remember(store: Path, description: dict[str, Any]) -> None:
    """Write ``<key>.json`` beside the store: what it is prepared from (the cache stays readable by people)."""
    store.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"plugin": plugin_version(), **description}, indent=1, sort_keys=True, default=str)
    store.with_name(store.name + ".json").write_text(text + "\n", encoding="utf-8")
