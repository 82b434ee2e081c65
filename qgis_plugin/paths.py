"""Where things are, relative to this package (no qgis, no torch)."""

from __future__ import annotations

from pathlib import Path

PLUGIN_DIR = Path(__file__).resolve().parent
#: The checkout (or installed plugin folder) holding ``backend/``, ``resources/`` and ``metadata.txt``.
ROOT = PLUGIN_DIR.parent
RESOURCES = ROOT / "resources"
ICON = RESOURCES / "icons" / "eo_ssl.svg"
