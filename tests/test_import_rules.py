"""The process boundary (docs/DESIGN.md): backend/ never imports qgis; qgis_plugin/ never imports torch."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def imported_roots(path: Path) -> set[str]:
    """Top-level names of every module ``path`` imports (anywhere in the file, also inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
        elif (isinstance(node, ast.Call) and isinstance(node.func, (ast.Name, ast.Attribute))
              and getattr(node.func, "attr", getattr(node.func, "id", "")) in ("import_module", "__import__")
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            roots.add(node.args[0].value.split(".")[0])
    return roots


@pytest.mark.parametrize(("package", "forbidden"), [
    ("backend", {"qgis", "PyQt5", "PyQt6", "sip"}),
    ("qgis_plugin", {"torch", "torchvision", "timm", "lightning", "lightly", "kornia", "segmentation_models_pytorch",
                     "torchgeo", "torchmetrics", "rasterio", "backend"}),
])
def test_package_does_not_import(package: str, forbidden: set[str]) -> None:
    files = sorted((REPO / package).rglob("*.py"))
    assert files, f"{package}/ has no Python files"
    offenders = {str(f.relative_to(REPO)): sorted(imported_roots(f) & forbidden) for f in files}
    assert {f: bad for f, bad in offenders.items() if bad} == {}


def test_the_scan_sees_imports(tmp_path: Path) -> None:
    sample = tmp_path / "m.py"
    sample.write_text("import os\nfrom torch.nn import Linear\ndef f():\n    import qgis.core\n"
                      "importlib.import_module('timm.models')\nfrom . import sibling\n")
    assert imported_roots(sample) == {"os", "torch", "qgis", "timm"}
