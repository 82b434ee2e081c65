"""eo-ssl backend: data preparation, self-supervised pre-training, fine-tuning and prediction.

This package never imports ``qgis``; the QGIS plugin runs it as a subprocess (see docs/DESIGN.md).
"""

from __future__ import annotations

import configparser
import warnings
from pathlib import Path

# Debian's python3-matplotlib (seen through the venv's system site) ships an mpl_toolkits that the venv's matplotlib
# cannot load; the 3D projection is not used, so its import warning is only noise in every command's stderr.
warnings.filterwarnings("ignore", message="Unable to import Axes3D")


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
