"""The import boundaries docs/DESIGN.md promises: training reads chip stores with numpy and torch alone (no GIS
library), and OGR's vector reader is loaded only by commands given a vector file."""

from __future__ import annotations

import subprocess
import sys

from tests.backend.pretrain_helpers import REPO

_BLOCKER = """
import importlib.abc, sys
BLOCKED = set(sys.argv[1].split(","))
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked")
sys.meta_path.insert(0, Blocker())
import importlib
for module in sys.argv[2].split(","):
    importlib.import_module(module)
print("ok")
"""


def _imports_without(blocked: list[str], modules: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _BLOCKER, ",".join(blocked), ",".join(modules)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def test_training_needs_no_gis_library() -> None:
    proc = _imports_without(["rasterio", "pyproj", "shapely", "pyogrio", "geopandas"],
                            ["backend.train.pretrain", "backend.train.pretrain_dense", "backend.train.finetune",
                             "backend.train.evaluate", "backend.data.pretraining", "backend.data.datasets",
                             "backend.data.labelled", "backend.data.dates"])
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


def test_predict_loads_no_vector_reader_or_ssl_library() -> None:
    proc = _imports_without(["pyogrio", "geopandas", "kornia", "lightly"], ["backend.predict.command", "backend.cli"])
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]
