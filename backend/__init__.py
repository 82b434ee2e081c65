"""eo-ssl backend: data preparation, self-supervised pre-training, fine-tuning and prediction.

This package never imports ``qgis``; the QGIS plugin runs it as a subprocess (see docs/DESIGN.md).
"""

from __future__ import annotations

import configparser
from pathlib import Path


def _version() -> str:
    """The version from ``metadata.txt``, the one source of truth for name and version."""
    meta = Path(__file__).resolve().parent.parent / "metadata.txt"
    parser = configparser.ConfigParser(interpolation=None)
    if parser.read(meta, encoding="utf-8") and parser.has_option("general", "version"):
        return parser.get("general", "version")
    try:
        from importlib.metadata import version

        return version("eo-ssl")
    except Exception:  # noqa: BLE001 - not installed and no metadata.txt: still importable
        return "0+unknown"


__version__ = _version()
