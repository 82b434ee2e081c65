"""``eo-ssl evaluate``: how good are these encoders, and how much did pre-training buy, at several label fractions.

Protocols (as in the SSL papers):

- ``linear``: a probe on **frozen** encoder features. Chips: pooled features, standardised, a linear head or
  RS-BYOL's MLP head (hidden 128, BatchNorm, ReLU) trained with Adam. Cubes: a DeepLabV3 decoder over the frozen
  encoder (the dense counterpart of a linear probe), trained like ``finetune --freeze-encoder --arch deeplabv3``.
- ``knn``: weighted k-nearest-neighbour vote on L2-normalised frozen features (cosine similarity, weight
  ``exp(sim / 0.07)``, k = 20 or fewer). Cubes: per-pixel features (the encoder's output-stride-8 map, sampled
  bilinearly at labelled pixels; up to ``--max-pixels`` training and validation pixels).
- ``finetune``: the whole network trained (``finetune``'s loop): a linear head for chips, ``--arch`` (U-Net) for
  cubes.

Every (init, fraction) is scored on the whole validation split (for cube kNN: the sampled validation pixels) with
one confusion matrix: OA, macro F1, average accuracy, per-class IoU, mIoU. ``random`` is the same encoder at random
initialisation, reading the same bands as the first package (normalised with the data's statistics). RS-BYOL
single-channel packages (``channel_mode: per-band``) embed each band alone and average the features.

The report folder (written under a temporary name, then moved into place): ``report.json`` (every number),
``report.html`` (self-contained), ``label_efficiency.png``, ``confusion.png`` (largest fraction, one panel per
init), ``tsne.png`` (t-SNE of the frozen validation embeddings coloured by class, one panel per init).
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from backend import __version__, options
from backend.data.chipstore import ChipStore
from backend.data.labelled import CubeReader, CubeWindows, draw_fraction, train_parcels
from backend.errors import EoSslError
from backend.events import Events
from backend.models.inputs import InputSpec
from backend.outputs import Output, abort_on_failure
from backend.report import plots
from backend.report.metrics import confusion, headline, scores
from backend.train import finetune as ft
from backend.train import probes, runner
from backend.train.compare import run_compare
from backend.train.init_source import InitSource

PROTOCOLS = options.PROTOCOLS
PATHS = options.COMPARE_PATHS


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options, declared in :mod:`backend.options`."""
    options.add_arguments(p, "evaluate")


# -- command --------------------------------------------------------------------------------------------------------
PROTOCOL_TEXT = {
    ("linear", "classification"): "a {head} probe on frozen, standardised pooled encoder features",
    ("linear", "segmentation"): "a DeepLabV3 decoder trained over the frozen encoder (weights and BatchNorm fixed)",
    ("knn", "classification"): "weighted kNN vote (k={k}, cosine similarity, weights exp(sim/0.07)) on frozen "
                               "pooled features",
    ("knn", "segmentation"): "weighted kNN vote (k={k}, cosine, exp(sim/0.07)) on frozen per-pixel features "
                             "(output stride 8, bilinear), sampled pixels",
    ("finetune", "classification"): "the whole network (encoder + linear head) fine-tuned",
    ("finetune", "segmentation"): "the whole network (encoder + {arch}) fine-tuned",
}


def run(args: argparse.Namespace, events: Events) -> dict[str, Any]:
    t0 = time.monotonic()
    out = Path(args.out)
    output = Output(out, kind="report", folder=True, replace=True,
                    inputs=options.paths("evaluate", args, "input")).check().log_swept(events.log)
    if args.protocol == "compare":
            return run_compare(args, events, t0, output)
    if not args.init:
        raise EoSslError("bad_argument", f"--protocol {args.protocol} needs --init (packages and/or random).",
                         "Give e.g. --init MODEL_DIR random.")
    fractions = probes.parse_fractions(args.label_fractions or "1,0.5,0.1,0.01")
    cfg = runner.TrainConfig.from_args(args, epochs=20 if args.protocol == "finetune" else 10, batch_size=16)
    names = list(dict.fromkeys(str(i) for i in args.init))
    store, task, inits, labels, specs, device = probes.load_contest(args, names, cfg, events.warning)
    tmp = output.start()
    with abort_on_failure(out, output.abort):
        results, tsne_items, confusions, classes, notes = [], [], [], None, {}
        for init, label, (spec, picks) in zip(inits, labels, specs):
            events.log(f"evaluating {label}: {args.protocol} protocol on {task}, fractions "
                       f"{', '.join(f'{f:g}' for f in fractions)}")
            base = ft.build_task_data(store, task, spec, picks, seed=cfg.seed, crop=args.crop,
                                      samples_per_epoch=args.samples_per_epoch, date=args.date, warn=events.warning)
            if base.val is None:
                raise EoSslError("no_validation", f"{store.path} has no validation split to score on.",
                                 "Prepare the store with a --val-fraction above 0.")
            classes = base.classes
            k = len(classes)
            frozen = ft.build_net(task, init, spec, k, arch="deeplabv3", head="linear")
            if task == "classification":
                train_ds = probes.all_train_chips(base)
                tr_x, tr_y = probes.chip_features(frozen, train_ds, device)
                va_x, va_y = probes.chip_features(frozen, base.val, device)
                tr_group = np.arange(len(tr_y))  # fractions are drawn by chip
            else:
                val_windows: CubeWindows = base.val  # type: ignore[assignment]
                va_x, va_y, _ = probes.pixel_features(frozen, val_windows, device, args.max_pixels, cfg.seed)
                tr_x = tr_y = tr_group = None
                if args.protocol == "knn":
                    train_windows = CubeWindows(CubeReader(store, spec, picks, base.date, "train"),  # type: ignore[arg-type]
                                                val_windows.size)
                    tr_x, tr_y, tr_group = probes.pixel_features(frozen, train_windows, device, args.max_pixels,
                                                                 cfg.seed)
            sel = np.random.default_rng(cfg.seed).permutation(len(va_y))[:args.tsne_samples]
            tsne_items.append((label, probes.tsne(va_x[sel], cfg.seed), va_y[sel]))
            for fraction in fractions:
                events.check_cancel()
                cm, n_train = _one(args, task, init, spec, picks, store, base, fraction, cfg, device, tmp, events,
                                   tr_x, tr_y, tr_group, va_x, va_y)
                s = scores(cm, base.class_names)
                results.append({"init": label, "fraction": fraction, "n_train": n_train, "metrics": s,
                                "confusion": cm.tolist()})
                events.log(f"{label} @ {fraction:g}: " + ", ".join(
                    f"{m} {v:.3f}" for m, v in headline(s).items() if v is not None))
            top = [r for r in results if r["init"] == label and r["fraction"] == fractions[0]][0]
            confusions.append((f"{label} (fraction {fractions[0]:g})", np.array(top["confusion"])))
            if task == "segmentation":
                notes[label] = {"val_pixels": int(len(va_y)) if args.protocol == "knn" else None}
        assert classes is not None
        class_names = [c["name"] for c in classes]
        images = {
            "Label efficiency": plots.label_efficiency(results, tmp / "label_efficiency.png",
                                                       title=f"{args.protocol} protocol"),
            "Confusion matrices": plots.confusion_matrices(confusions, class_names, tmp / "confusion.png"),
            "t-SNE of the validation embeddings (frozen encoder)": plots.tsne_panels(tsne_items, classes,
                                                                                    tmp / "tsne.png"),
        }
        report = {
            "format": "eo-ssl-report", "version": 1, "code_version": __version__,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "data": str(Path(args.data).resolve()), "task": task, "protocol": args.protocol,
            "protocol_description": PROTOCOL_TEXT[(args.protocol, task)].format(
                head=args.probe_head, k=args.k, arch=args.arch),
            "probe_head": args.probe_head if args.protocol == "linear" and task == "classification" else None,
            "k": args.k if args.protocol == "knn" else None,
            "label_fractions": fractions, "seed": cfg.seed,
            "fraction_unit": "by chip" if task == "classification" else "by parcel",
            "validation": ("validation chips" if task == "classification" else
                           "sampled validation pixels" if args.protocol == "knn" else "all validation pixels"),
            "training": {"epochs": cfg.epochs, "max_steps": cfg.max_steps, "batch_size": cfg.batch_size,
                         "probe_epochs": args.probe_epochs, "lr": args.lr},
            "classes": classes,
            "inits": [{"label": lb, **i.provenance(), "method": (i.meta or {}).get("method")}
                      for lb, i in zip(labels, inits)],
            "results": results, "notes": notes,
            "plots": {"label_efficiency": "label_efficiency.png", "confusion": "confusion.png", "tsne": "tsne.png"},
            "elapsed_s": round(time.monotonic() - t0, 1),
        }
        probes.write_report(tmp, report, images)
        events.check_cancel()  # the last safe point: a signal after it finds the report complete
        output.commit()
    for name, kind in (("report.html", "report"), ("report.json", "report_json"), ("label_efficiency.png", "plot"),
                       ("confusion.png", "plot"), ("tsne.png", "plot")):
        events.artifact(kind, str(out / name))
    best = {lb: headline(r["metrics"]) for r in results for lb in [r["init"]] if r["fraction"] == fractions[0]}
    return {"out": str(out), "report": str(out / "report.html"), "protocol": args.protocol, "task": task,
            **{f"{lb} @ {fractions[0]:g}": ", ".join(f"{m} {v:.3f}" for m, v in h.items() if v is not None)
               for lb, h in best.items()}}


def _one(args: argparse.Namespace, task: str, init: InitSource, spec: InputSpec, picks: list[tuple[str, int]],
         store: ChipStore, base: ft.TaskData, fraction: float, cfg: runner.TrainConfig, device: torch.device,
         tmp: Path, events: Events, tr_x: np.ndarray | None, tr_y: np.ndarray | None, tr_group: np.ndarray | None,
         va_x: np.ndarray, va_y: np.ndarray) -> tuple[np.ndarray, int]:
    """The confusion matrix of one (init, fraction) and the number of training items it used."""
    k = len(base.classes)
    if args.protocol == "knn" or (args.protocol == "linear" and task == "classification"):
        assert tr_x is not None and tr_y is not None and tr_group is not None
        keep = _fraction_mask(store, task, tr_y, tr_group, fraction, cfg.seed)
        if args.protocol == "knn":
            pred = probes.knn_predict(tr_x[keep], tr_y[keep], va_x, k, args.k)
        else:
            pred = probes.train_probe(tr_x[keep], tr_y[keep], va_x, k, args.probe_head, args.probe_epochs, args.lr,
                               cfg.seed)
        cm = confusion(torch.from_numpy(va_y), torch.from_numpy(pred), k).numpy()
        n_train = int(keep.sum()) if task == "classification" else int(len(np.unique(tr_group[keep])))
        return cm, n_train
    data = ft.build_task_data(store, task, spec, picks, label_fraction=fraction, seed=cfg.seed, crop=args.crop,
                              samples_per_epoch=args.samples_per_epoch, date=args.date)
    linear = args.protocol == "linear"
    net = ft.build_net(task, init, spec, k, arch="deeplabv3" if linear else args.arch, head="linear")
    (tmp / ".runs").mkdir(exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(dir=tmp / ".runs"))
    outcome = ft.train(data, net, cfg, run_dir, events, lr=args.lr, freeze_encoder=linear,
                       stage=f"{args.protocol} {fraction:g}")
    shutil.rmtree(run_dir, ignore_errors=True)
    assert outcome.confusion is not None
    unit = data.info["unit"]
    return outcome.confusion, int(data.info[f"train_{unit}s_used"])


def _fraction_mask(store: ChipStore, task: str, y: np.ndarray, group: np.ndarray, fraction: float,
                   seed: int) -> np.ndarray:
    """Training items kept at ``fraction``: chips drawn by chip; pixels drawn by parcel (the finetune draw)."""
    if fraction >= 1:
        return np.ones(len(y), bool)
    if task == "classification":
        return draw_fraction(y, fraction, seed)
    ids, cls, n_total = train_parcels(store)
    keep_parcel = np.zeros(n_total, bool)
    keep_parcel[ids[draw_fraction(cls, fraction, seed)]] = True
    return keep_parcel[np.clip(group, 0, n_total - 1)] & (group >= 0)


