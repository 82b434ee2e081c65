"""eo-ssl backend: data preparation, self-supervised pre-training, fine-tuning and prediction.

This package never imports ``qgis``; the QGIS plugin runs it as a subprocess (see docs/DESIGN.md).
"""

from __future__ import annotations

import configparser
import os
import warnings
from pathlib import Path

# OpenMP threads (torch's CPU kernels, scikit-learn's gradient boosting) that wait for work sleep instead of spinning,
# unless the user says otherwise. Spinning threads steal the cores other processes need: on a 2-core machine shared
# with one other job, a ResNet-18 training step took 3x longer and a small gradient-boosting fit 16x longer with
# the default (measured: 11.2 -> 3.5 s per step, 159 -> 9.8 s per fit). It must be set before OpenMP starts, so here,
# where every entry point (CLI, plugin subprocess, tests) imports first.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

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
