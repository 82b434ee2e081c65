"""Where things are, relative to this package (no qgis, no torch).

Two layouts, one code base:

- **the checkout**: ``<repo>/qgis_plugin/`` (this package), ``<repo>/backend/``, ``<repo>/resources/``,
  ``<repo>/metadata.txt``;
- **the installed plugin** (the zip made by ``scripts/build_plugin.py``): ``<plugins>/eo_ssl/`` holds this
  package's modules *and* ``backend/``, ``resources/``, ``metadata.txt`` and the requirement files.

``ROOT`` is the folder that holds ``backend/`` (the backend runs with ``PYTHONPATH=ROOT``), ``resources/`` and
``metadata.txt``, in both layouts.
"""

from __future__ import annotations

import configparser
from pathlib import Path

PLUGIN_DIR = Path(__file__).resolve().parent


def _root(plugin_dir: Path) -> Path:
    """The plugin folder itself when it carries metadata.txt (installed zip), else its parent (the checkout)."""
    if (plugin_dir / "metadata.txt").is_file():
        return plugin_dir
    return plugin_dir.parent


#: The checkout (or installed plugin folder) holding ``backend/``, ``resources/`` and ``metadata.txt``.
ROOT = _root(PLUGIN_DIR)
RESOURCES = ROOT / "resources"
ICON = RESOURCES / "icons" / "eo_ssl.svg"
LABEL_ICON = RESOURCES / "icons" / "eo_ssl_label.svg"
STYLES = RESOURCES / "styles"
MODELS = RESOURCES / "models"
METADATA = ROOT / "metadata.txt"
INSTALLED = ROOT == PLUGIN_DIR


def plugin_metadata() -> dict[str, str]:
    """The ``[general]`` section of metadata.txt (name, version, ...); empty if it cannot be read."""
    meta = configparser.ConfigParser(interpolation=None)
    try:
        meta.read(METADATA, encoding="utf-8")
        return dict(meta["general"])
    except (OSError, KeyError, configparser.Error):
        return {}


def plugin_version() -> str:
    return plugin_metadata().get("version", "unknown")
