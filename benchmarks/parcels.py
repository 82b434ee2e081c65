"""Parcels/s of ``eo-ssl label-parcels`` vs a per-parcel ``rasterio.mask`` baseline, and peak RSS.

Data (generated once into ``benchmarks/.cache/parcels/``; delete it to regenerate):

- a uint8 class map of a Sentinel-2 tile's size, 10980 x 10980 px at 10 m (UTM 33N), tiled 512 x 512, DEFLATE,
  nodata 255, 8 classes: each parcel's class everywhere in the parcel, 5 % of the pixels a random class, 1 % nodata;
- 100,000 parcels: the Voronoi cells of a 317 x 317 grid of points jittered by up to 35 % of the spacing, clipped
  to the tile (about 12 ha, 1,200 pixels each), as a GeoPackage.

Runs (each in its own process, so its peak RSS is its own):

- ``label-parcels``: the command end to end (read the GeoPackage, label, write the output GeoPackage);
- baseline: for a random subset of parcels (2,000 by default) ``rasterio.mask.mask(crop=True)`` + ``np.bincount``
  per parcel, the usual way; its rate is extrapolated to all parcels (said in the table). The subset's majority
  classes and pixel counts are checked against label-parcels' output.

``python benchmarks/parcels.py [--parcels 100000] [--baseline 2000] [--write benchmarks/results/parcels.md]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from common import cpu_name, memory

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / "benchmarks" / ".cache" / "parcels"
SIZE = 10980
RES = 10.0
ORIGIN = (300000.0, 5900040.0)  # a T33 tile's upper-left corner
CLASSES = ["farm", "forest", "grass", "meadow", "residential", "scrub", "water", "wetland"]


def _paths(n: int) -> tuple[Path, Path]:
    return CACHE / f"map_{SIZE}_{n}.tif", CACHE / f"parcels_{n}.gpkg"


def generate(n: int) -> tuple[Path, Path]:
    """The map and the parcels (once)."""
    import pyogrio.raw
    import rasterio
    import shapely
    from affine import Affine
    from rasterio.features import rasterize
    from rasterio.windows import Window

    map_path, parcels_path = _paths(n)
    if map_path.exists() and parcels_path.exists():
        return map_path, parcels_path
    CACHE.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    rng = np.random.default_rng(0)
    side = int(np.ceil(np.sqrt(n)))
    extent = SIZE * RES
    step = extent / side
    gx, gy = np.meshgrid(np.arange(side), np.arange(side))
    jitter = rng.uniform(-0.35, 0.35, (2, side * side))
    x = ORIGIN[0] + (gx.ravel() + 0.5 + jitter[0]) * step
    y = ORIGIN[1] - extent + (gy.ravel() + 0.5 + jitter[1]) * step
    box = shapely.box(ORIGIN[0], ORIGIN[1] - extent, ORIGIN[0] + extent, ORIGIN[1])
    cells = np.array(shapely.voronoi_polygons(shapely.multipoints(np.column_stack([x, y])), extend_to=box).geoms)
    cells = shapely.intersection(cells, box)
    cells = cells[rng.permutation(len(cells))[:n]]
    classes = rng.integers(0, len(CLASSES), len(cells)).astype(np.uint8)
    ids = np.arange(1, len(cells) + 1, dtype=np.int64)
    pyogrio.raw.write(parcels_path, shapely.to_wkb(cells), [ids, classes.astype(np.int64)],
                      ["parcel_id", "true_class"], layer="parcels", driver="GPKG", geometry_type="Polygon",
                      crs="EPSG:32633")
    transform = Affine(RES, 0.0, ORIGIN[0], 0.0, -RES, ORIGIN[1])
    profile = {"driver": "GTiff", "width": SIZE, "height": SIZE, "count": 1, "dtype": "uint8", "nodata": 255,
               "crs": "EPSG:32633", "transform": transform, "tiled": True, "blockxsize": 512, "blockysize": 512,
               "compress": "deflate", "BIGTIFF": "IF_SAFER"}
    tree = shapely.STRtree(cells)
    tmp = map_path.with_name(map_path.stem + ".tmp.tif")
    with rasterio.open(tmp, "w", **profile) as dst:
        for row in range(0, SIZE, 512):
            h = min(512, SIZE - row)
            win = Window(0, row, SIZE, h)
            wt = dst.window_transform(win)
            top = ORIGIN[1] - row * RES
            hits = tree.query(shapely.box(ORIGIN[0], top - h * RES, ORIGIN[0] + extent, top))
            strip = rasterize(((cells[i], int(classes[i])) for i in hits), out_shape=(h, SIZE), transform=wt,
                              fill=255, dtype="uint8")
            noise = rng.random(strip.shape) < 0.05
            strip[noise] = rng.integers(0, len(CLASSES), int(noise.sum()))
            strip[rng.random(strip.shape) < 0.01] = 255
            dst.write(strip, 1, window=win)
        dst.update_tags(CLASS_NAMES=json.dumps(CLASSES))
    os.replace(tmp, map_path)
    print(f"generated {len(cells)} parcels and a {SIZE} x {SIZE} map in {time.monotonic() - t0:.0f} s",
          file=sys.stderr)
    return map_path, parcels_path


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def run_label(n: int, out: Path) -> dict:
    """label-parcels end to end, in this (child) process."""
    from backend.cli import main

    map_path, parcels_path = _paths(n)
    out.unlink(missing_ok=True)
    t0 = time.monotonic()
    rc = main(["label-parcels", "--map", str(map_path), "--parcels", str(parcels_path), "--out", str(out),
               "--id-field", "parcel_id", "--events"])
    elapsed = time.monotonic() - t0
    return {"rc": rc, "seconds": elapsed, "parcels": n, "rate": n / elapsed, "peak_rss_mib": _peak_rss_mib()}


def run_baseline(n: int, subset: int) -> dict:
    """rasterio.mask per parcel on a random subset, in this (child) process."""
    import pyogrio.raw
    import rasterio
    import rasterio.mask
    import shapely

    map_path, parcels_path = _paths(n)
    _, fids, wkb, _ = pyogrio.raw.read(parcels_path, return_fids=True)
    pick = np.sort(np.random.default_rng(1).choice(len(wkb), size=min(subset, len(wkb)), replace=False))
    geoms = shapely.from_wkb(np.asarray(wkb, dtype=object)[pick])
    results = {}
    t0 = time.monotonic()
    with rasterio.open(map_path) as src:
        for fid, g in zip(fids[pick], geoms):
            data, _ = rasterio.mask.mask(src, [g], crop=True, filled=False)
            values = data[0].compressed()
            counts = np.bincount(values, minlength=1)
            results[int(fid)] = (int(counts.argmax()) if len(values) else -1, int(len(values)))
    elapsed = time.monotonic() - t0
    return {"seconds": elapsed, "parcels": len(pick), "rate": len(pick) / elapsed, "peak_rss_mib": _peak_rss_mib(),
            "results": results}


def _child(mode: str, n: int, subset: int, out: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", mode, "--parcels", str(n), "--baseline",
           str(subset), "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"{mode} run failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _machine() -> str:
    cpu, mem = cpu_name(), memory()
    import rasterio

    return (f"{cpu}, {os.cpu_count()} logical cores{mem}; {platform.system()} {platform.release()}; Python "
            f"{platform.python_version()}, rasterio {rasterio.__version__}, GDAL {rasterio.__gdal_version__}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--parcels", type=int, default=100_000)
    p.add_argument("--baseline", type=int, default=2_000, help="parcels in the baseline's random subset")
    p.add_argument("--write", metavar="MD", help="also write the table (with date and machine) to this file")
    p.add_argument("--child", choices=["label", "baseline"], help=argparse.SUPPRESS)
    p.add_argument("--out", default=str(CACHE / "labelled.gpkg"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child == "label":
        print(json.dumps(run_label(args.parcels, Path(args.out))))
        return
    if args.child == "baseline":
        print(json.dumps(run_baseline(args.parcels, args.baseline)))
        return

    generate(args.parcels)
    load = os.getloadavg()[0]
    out = Path(args.out)
    label = _child("label", args.parcels, args.baseline, out)
    base = _child("baseline", args.parcels, args.baseline, out)

    import pyogrio

    df = pyogrio.read_dataframe(out, columns=["src_fid", "class_id", "n_valid", "status"], read_geometry=False)
    by_fid = df.set_index("src_fid")
    same = 0
    for fid, (cls, nv) in base["results"].items():
        row = by_fid.loc[int(fid)]
        same += int(int(row["n_valid"]) == nv and (nv == 0 or int(row["class_id"]) == cls))
    base_total_s = args.parcels / base["rate"]
    ratio = label["rate"] / base["rate"]
    rows = [
        ("eo-ssl label-parcels (block reads + bincount), end to end incl. reading/writing the GeoPackage",
         f"{args.parcels:,}", f"{label['seconds']:.1f}", f"{label['rate']:,.0f}", f"{label['peak_rss_mib']:.0f}"),
        (f"per-parcel rasterio.mask + bincount (measured on {base['parcels']:,} random parcels, "
         f"{base['seconds']:.1f} s; time for all {args.parcels:,} extrapolated)",
         f"{args.parcels:,}", f"{base_total_s:.0f} (extrapolated)", f"{base['rate']:,.0f}",
         f"{base['peak_rss_mib']:.0f}"),
    ]
    lines = ["| method | parcels | time (s) | parcels/s | peak RSS (MiB) |", "|---|---:|---:|---:|---:|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines.append(f"\nSpeed-up: **{ratio:.1f}x** parcels/s. The baseline's {base['parcels']:,} parcels agree with "
                 f"label-parcels on the majority class and valid-pixel count for {same:,} of them.")
    table = "\n".join(lines)
    print(table)
    if args.write:
        status = df["status"].value_counts().to_dict()
        text = (f"# label-parcels benchmark\n\n`python benchmarks/parcels.py --write {args.write}` on "
                f"{dt.date.today().isoformat()}.\n\nMachine: {_machine()}.\n\n"
                f"Data: a {SIZE} x {SIZE} uint8 class map (Sentinel-2 tile size at 10 m, tiled 512 x 512, DEFLATE, "
                f"8 classes, 5 % noise, 1 % nodata) and {args.parcels:,} synthetic parcels (jittered Voronoi "
                f"cells, ~12 ha each), generated by the script. Statuses: {status}.\n\n{table}\n\n"
                f"Notes: one process each, single-threaded; load average {load:.1f} when the runs started (the "
                "machine is shared). Peak RSS includes ~135 MiB of imported libraries (numpy, GDAL, PROJ); the "
                "baseline's includes reading all parcels' geometries, as label-parcels' does. label-parcels' "
                "time covers reading the GeoPackage, reprojection check, counting, statuses and writing the "
                "output GeoPackage; the baseline's only the per-parcel masking and counting.\n")
        Path(args.write).parent.mkdir(parents=True, exist_ok=True)
        Path(args.write).write_text(text)


if __name__ == "__main__":
    main()
