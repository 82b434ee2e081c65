"""The import rules (docs/DESIGN.md, "Layers"): backend/ never imports qgis; qgis_plugin/ never imports torch; inside
backend/ no import cycle and no import from a lower layer to a higher one. Every import counts, also one inside a
function and an ``import_module("...")`` of a constant name."""

from __future__ import annotations

import ast
import re
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


# -- layers of backend/ -------------------------------------------------------------------------------------------
#: lowest first; a module may import from its own layer and the layers before it, never from a later one. A package
#: name stands for all its modules; the first matching entry decides.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("core", ("backend", "backend.errors", "backend.events", "backend.options", "backend.option_tables",
              "backend.outputs", "backend.disk", "backend.output_paths", "backend.devices",
              "backend.data.bands")),  # bands: the band names every layer speaks
    ("report", ("backend.report",)),  # numbers, plots, html: imports nothing of backend
    ("models", ("backend.models",)),  # networks, the package format, the input spec, weights with a shape check
    ("data", ("backend.data",)),  # stores, scenes, grids; standardised by a model's input spec
    ("methods", ("backend.task", "backend.ssl", "backend.pixel")),  # the training template, the SSL methods, the pixel
    # classifiers
    ("train", ("backend.train",)),
    ("apps", ("backend.predict", "backend.parcels", "backend.interop")),
    ("commands", ("backend.commands", "backend.cli", "backend.demo", "backend.__main__")),
]


def backend_modules() -> dict[str, Path]:
    mods = {}
    for path in sorted((REPO / "backend").rglob("*.py")):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


def backend_imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The backend modules ``name`` imports (``from backend.x import y`` counts y when y is a module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in
              ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant)):
            found.add(str(node.args[0].value))
    return {m for m in found if m in known and m != name}


def layer_of(module: str) -> int:
    for i, (_, members) in enumerate(LAYERS):
        if any(module == m or (m != "backend" and module.startswith(m + ".")) for m in members):
            return i
    raise AssertionError(f"{module} is in no layer of tests/test_import_rules.py: add it to LAYERS")


def import_graph() -> dict[str, set[str]]:
    mods = backend_modules()
    return {name: backend_imports(name, path, set(mods)) for name, path in mods.items()}


def test_every_module_has_a_layer() -> None:
    for module in backend_modules():
        layer_of(module)


def test_no_import_up_the_layers() -> None:
    up = sorted(f"{a} ({LAYERS[layer_of(a)][0]}) -> {b} ({LAYERS[layer_of(b)][0]})"
                for a, targets in import_graph().items() for b in targets if layer_of(b) > layer_of(a))
    assert up == []


def test_no_import_cycle() -> None:
    graph = import_graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert cycles == []


def test_the_graph_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    sample = tmp_path / "m.py"
    sample.write_text("from backend.data import chipstore\ndef f():\n    from backend.train.runner import fit\n"
                      "    importlib.import_module('backend.models.presto')\nfrom . import aoi\n")
    known = {"backend.data", "backend.data.chipstore", "backend.train.runner", "backend.models.presto",
             "backend.data.aoi"}
    assert backend_imports("backend.data.m", sample, known) == known


def test_the_layers_match_the_design() -> None:
    """docs/DESIGN.md's "Layers" table names the same layers in the same order."""
    text = (REPO / "docs" / "DESIGN.md").read_text(encoding="utf-8")
    section = text.split("## Layers", 1)[1].split("\n## ", 1)[0]
    assert re.findall(r"^\| \d+ \| `?(\w+)`? \|", section, re.MULTILINE) == [name for name, _ in LAYERS]


def test_option_preset_names_are_the_presets() -> None:
    """``backend.options`` (the lowest layer) names the normalisation presets that ``interop.presets`` defines."""
    from backend import options
    from backend.interop import presets

    assert tuple(presets.PRESETS) == options.NORMALISATION_PRESETS
