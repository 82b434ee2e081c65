#!/usr/bin/env python3
"""Build the installable QGIS plugin zip: ``dist/eo_ssl-<version>.zip`` holding one folder ``eo_ssl/``.

Layout of ``eo_ssl/`` (what QGIS's "Install from ZIP" unpacks into ``<profile>/python/plugins/``):

    __init__.py, plugin.py, ... algorithms/   the plugin (the modules of qgis_plugin/, flattened one level up)
    metadata.txt, LICENSE                     QGIS metadata (name, version, ...) and the licence
    backend/                                  the training backend, run as ``python -m backend`` with
                                              PYTHONPATH = this folder, by the backend Python (never imported by QGIS)
    requirements.txt, requirements.lock,      what the managed backend environment installs (the direct
    constraints.txt                           dependencies, under the lock's exact versions and the constraints)
    i18n/eo_ssl.ts                            the translation template (and any eo_ssl_<locale>.qm)
    resources/icons, resources/models, resources/styles (when present)

The backend travels inside the plugin so that plugin and backend versions always match: the managed environment
(Raster > eo-ssl > Set up the backend…) only holds the third-party packages (torch, rasterio, ...).
Left out: tests, caches (__pycache__, *.pyc), the demo sample (resources/sample) and anything not listed above.

Pure standard library; run it with any Python 3.11+: ``python3 scripts/build_plugin.py [--out DIR]``.
"""

from __future__ import annotations

import argparse
import configparser
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_NAME = "eo_ssl"
EXCLUDED_PARTS = {"__pycache__", ".pytest_cache", ".ruff_cache", "tests"}
EXCLUDED_SUFFIXES = {".pyc", ".pyo"}
RESOURCE_DIRS = ("icons", "models", "styles")
TOP_FILES = ("metadata.txt", "LICENSE", "requirements.txt", "requirements.lock", "constraints.txt")


def version() -> str:
    meta = configparser.ConfigParser(interpolation=None)
    meta.read(ROOT / "metadata.txt", encoding="utf-8")
    return meta["general"]["version"]


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not (set(p.relative_to(folder).parts)
                                                                       & EXCLUDED_PARTS)
                  and p.suffix not in EXCLUDED_SUFFIXES and not p.name.startswith("."))


def members() -> list[tuple[Path, str]]:
    """(source file, path inside the zip), in a stable order."""
    out: list[tuple[Path, str]] = []
    for src in _files(ROOT / "qgis_plugin"):
        out.append((src, f"{PLUGIN_NAME}/{src.relative_to(ROOT / 'qgis_plugin').as_posix()}"))
    for src in _files(ROOT / "backend"):
        out.append((src, f"{PLUGIN_NAME}/backend/{src.relative_to(ROOT / 'backend').as_posix()}"))
    for name in RESOURCE_DIRS:
        folder = ROOT / "resources" / name
        if folder.is_dir():
            for src in _files(folder):
                out.append((src, f"{PLUGIN_NAME}/resources/{name}/{src.relative_to(folder).as_posix()}"))
    for name in TOP_FILES:
        if (ROOT / name).is_file():
            out.append((ROOT / name, f"{PLUGIN_NAME}/{name}"))
    return out


def build(out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{PLUGIN_NAME}-{version()}.zip"
    tmp = target.with_name(target.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for src, arcname in members():
            zf.write(src, arcname)
    tmp.replace(target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="folder for the zip (default: dist/)")
    args = parser.parse_args(argv)
    target = build(args.out)
    with zipfile.ZipFile(target) as zf:
        n = len(zf.namelist())
    print(f"{target} ({n} files, {target.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
