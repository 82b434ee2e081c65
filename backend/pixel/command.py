"""``eo-ssl finetune --arch pixel``: the pixel classifier as a command (see :mod:`backend.pixel.train`), written as a
model package that ``eo-ssl predict`` maps like any other."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from backend.data.chipstore import ChipStore, grid_resolution
from backend.data.labelled import (
    check_training_classes,
    classes_of,
    draw_fraction,
    parcels_per_class,
    train_parcels,
    warn_few_validation_parcels,
)
from backend.errors import EoSslError
from backend.events import Events
from backend.models.package import save_package
from backend.pixel.classifiers import CLASSIFIERS
from backend.pixel.data import input_from_args
from backend.pixel.train import (
    AUTO_CANDIDATES,
    QUICK_CANDIDATES,
    QUICK_MAX_PIXELS,
    PixelFit,
    fit_pixel_classifier,
    init_embedding,
    labelled_pixels,
    sample_by_parcel,
    score_pixels,
)
from backend.report.metrics import headline

#: validation pixels scored at most (spread over the validation parcels)
MAX_VAL_PIXELS = 200_000
#: parcels of a class the validation split needs to be scored on; with fewer they train the model too
MIN_VAL_PARCELS = 2


def keep_mask(store: ChipStore, fraction: float, seed: int) -> tuple[np.ndarray | None, int, int]:
    """The training parcels kept at ``fraction`` (drawn as the U-Net's are), and (kept, total) counts."""
    ids, cls, n_total = train_parcels(store)
    if len(ids) == 0:
        raise EoSslError("no_samples", f"{store.path} has no training parcels.", "Prepare with --parcels.")
    if fraction >= 1:
        return None, len(ids), len(ids)
    mask = draw_fraction(cls, fraction, seed)
    keep = np.zeros(n_total, bool)
    keep[ids[mask]] = True
    return keep, int(mask.sum()), len(ids)


def run(args: argparse.Namespace, events: Events, store: ChipStore, init: Any, out: Path) -> dict[str, Any]:
    """Fit, score on the validation parcels, and write the package (``init`` is a finetune ``InitSource`` or None)."""
    if args.task not in (None, "segmentation"):
        raise EoSslError("bad_argument", "--arch pixel maps every pixel: it is a segmentation model.",
                         "Leave --task out, or use --task segmentation.")
    classes = classes_of(store)
    k = len(classes)
    names = [c["name"] for c in classes]
    inp = input_from_args(store, args)
    seed = int(args.seed or 0)
    keep, used, total = keep_mask(store, args.label_fraction, seed)
    val_parcels = parcels_per_class(store, "val")
    train_classes = {n for n, c in parcels_per_class(store, "train").items() if c > 0}
    # a validation split too small to score on (fewer than MIN_VAL_PARCELS parcels of a class) is not wasted: its
    # parcels train the model too, and the score comes from cross-validation grouped by parcel
    merge_val = args.label_fraction >= 1 and any(val_parcels.get(n, 0) < MIN_VAL_PARCELS for n in train_classes) \
        and sum(val_parcels.values()) > 0
    splits: tuple[str, ...] = ("train", "val") if merge_val else ("train",)
    if merge_val:
        used, total = used + sum(val_parcels.values()), total + sum(val_parcels.values())
        events.log(f"the validation split holds {sum(val_parcels.values())} parcel(s), fewer than "
                   f"{MIN_VAL_PARCELS} of some class to score on: they train the model too, and its score comes "
                   "from cross-validation grouped by parcel")
    train_px = labelled_pixels(store, inp, splits, keep)
    if len(train_px) == 0:
        raise EoSslError("no_samples", f"No labelled training pixel with valid imagery in {store.path}.",
                         "Check the parcels, the split and the label fraction.")
    # parcels whose every pixel is clouded count as none: what the classifier really sees, per class
    train_parcels_of = {c["name"]: len(np.unique(train_px.parcels[train_px.labels == c["id"]])) for c in classes}
    check_training_classes(train_parcels_of, events.warning)
    quick = bool(getattr(args, "quick", False))
    train_px = sample_by_parcel(train_px, min(args.max_pixels, QUICK_MAX_PIXELS) if quick else args.max_pixels, seed)
    emb, enc_state = init_embedding(init, inp, args.embedding_dim, store, strict=True)
    dates = ", ".join(f"{b.sensor.upper()} {len(b.dates)} {'period' if inp.calendar else 'date'}(s)"
                      for b in inp.blocks)
    if inp.calendar is not None:
        dates += f" (season calendar: {inp.calendar.describe()}, season of {inp.year})"
    events.log(f"pixel classifier ({args.classifier}) on {store.path}: {k} classes; {len(train_px)} training "
               f"pixels of {used} of {total} training parcels (label fraction {args.label_fraction:g}); {dates}"
               + (f"; embedding of {init.label}" if emb is not None else "; spectra only"))
    candidates = QUICK_CANDIDATES if quick else AUTO_CANDIDATES
    # progress: each cross-validated candidate (with and without an embedding), the final fit, the score
    n_cv = (len(candidates) if args.classifier == "auto" else 1) * (2 if emb is not None else 1) \
        if args.classifier == "auto" or merge_val else 0
    n_steps = n_cv + 2

    def progress(done: int, _n: int, what: str) -> None:
        events.progress(done, n_steps, stage=f"pixel classifier: {what}")

    events.progress(0, n_steps, stage="pixel classifier: features")
    fit = fit_pixel_classifier(store, inp, train_px, k, classifier=args.classifier, embedding=emb,
                               encoder_state=enc_state, seed=seed, events=events, smooth=args.smooth,
                               cross_validate=merge_val, candidates=candidates, progress=progress)
    events.check_cancel()
    events.progress(n_cv + 1, n_steps, stage="pixel classifier: scoring")
    val_px = labelled_pixels(store, inp, "val") if not merge_val else None
    val_scores, cm = None, None
    if val_px is not None and len(val_px):
        cm, val_scores = score_pixels(fit.model, store, inp, sample_by_parcel(val_px, MAX_VAL_PIXELS, seed), k,
                                      names)
        warn_few_validation_parcels(val_parcels, events.warning)
    elif not merge_val:
        events.warning("no_validation", f"{store.path} has no validation parcels: the package has no held-out "
                       "score. Prepare the store with --val-fraction above 0 to know what the map is worth.")
    events.progress(n_steps, n_steps, stage="pixel classifier: done")
    meta = package_meta(store, fit, inp, classes, args, init, val_scores, cm, used, total, val_parcels, merge_val)
    events.check_cancel()  # the last safe point: a signal after it finds the package complete
    save_package(out, fit.model.package_state_dict(), meta)
    events.artifact("model", str(out))
    summary: dict[str, Any] = {"out": str(out), "task": "segmentation", "arch": "pixel",
                               "classifier": fit.model.classifier,
                               "embedding": fit.model.features.embedding is not None,
                               "train_pixels": fit.train_pixels, "train_parcels": fit.train_parcels,
                               "fit_s": round(fit.fit_s, 1)}
    if val_scores is not None:
        summary.update({f"val_{m}": (round(v, 4) if v is not None else None)
                        for m, v in headline(val_scores).items()})
        summary["val_parcels"] = sum(val_parcels.values())
    if fit.selection is not None and fit.selection.cv_miou is not None:
        summary["cv_miou"] = round(fit.selection.cv_miou, 4)
        summary["selection"] = fit.selection.reason
    if inp.calendar is not None:
        summary["calendar"] = inp.calendar.describe()
    return summary


def package_meta(store: ChipStore, fit: PixelFit, inp: Any, classes: list[dict[str, Any]], args: argparse.Namespace,
                 init: Any, val_scores: dict[str, Any] | None, cm: np.ndarray | None, used: int, total: int,
                 val_parcels: dict[str, int], merge_val: bool = False) -> dict[str, Any]:
    """``model.json`` of a pixel classifier (see docs/DESIGN.md)."""
    model = fit.model
    channels = [[b.sensor, band] for b in inp.blocks for band in b.bands]
    normalization = {b.sensor: {band: {"mean": m, "std": s} for band, m, s in zip(b.bands, b.mean, b.std)}
                     for b in inp.blocks}
    resolution, res_source = grid_resolution(store)
    manifest = store.manifest
    metrics: dict[str, Any] = {"val_parcels": val_parcels}
    if val_scores is not None:
        metrics["val"] = {k: v for k, v in val_scores.items() if k not in ("recall_per_class", "precision_per_class")}
        metrics["val_confusion"] = cm.tolist() if cm is not None else None
        metrics["val_source"] = "validation split: parcels never used for training or for choosing the classifier"
    sel = fit.selection
    if sel is not None and sel.cv_miou is not None:
        metrics["cv"] = {"miou": round(sel.cv_miou, 4), "folds": sel.folds,
                         "source": "out-of-fold predictions of cross-validation grouped by parcel on the training "
                                   "parcels" + (" (the validation parcels joined them: too few to score on)"
                                               if merge_val else "")}
    return {
        "task": "segmentation", "method": "supervised", "variant": None,
        "architecture": model.describe(),
        "input": {"channels": channels, "channel_mode": "stack", "layout": "sensor-date-band",
                  "dates": {b.sensor: b.dates for b in inp.blocks},
                  "time_steps": max(len(b.dates) for b in inp.blocks), "crop": None,
                  "date_rule": "given (--date)" if args.date else ("season calendar" if inp.calendar is not None
                                                                   else "every date of the store"),
                  **({"calendar": {**inp.calendar.to_dict(), "year": inp.year}} if inp.calendar is not None
                     else {})},
        "grid": {"resolution": resolution, "resolution_source": res_source,
                 "epsg": (manifest.get("grid") or {}).get("epsg")},
        "normalization": normalization, "normalization_source": "training data",
        "classes": [{"id": c["id"], "name": c["name"], "colour": c["colour"]} for c in classes],
        "training": {"classifier": model.classifier, "classifier_text": CLASSIFIERS[model.classifier].text,
                     "asked": args.classifier,
                     "selection": ({"method": f"{fit.selection.folds}-fold cross-validation grouped by parcel on the "
                                    "training parcels (mIoU)", "candidates": fit.selection.table,
                                    "kept": fit.selection.reason}
                                   if fit.selection is not None else None),
                     "validation_parcels_trained_on": merge_val,
                     "features": model.features.names[:50] + (["..."] if len(model.features.names) > 50 else []),
                     "n_features": model.features.dim,
                     "labels": {"unit": "parcel", "label_fraction": args.label_fraction, "train_parcels_total": total,
                                "train_parcels_used": used, "train_pixels": fit.train_pixels,
                                "max_pixels": args.max_pixels},
                     "seed": int(args.seed or 0), "elapsed_s": round(fit.fit_s, 1)},
        "metrics": metrics,
        "provenance": {"data": str(Path(store.path).resolve()),
                       "init": init.provenance() if init is not None else {"kind": "none"},
                       "aoi": (manifest.get("aoi") or {}).get("source"), "poi": manifest.get("poi"),
                       "labels": {k: (manifest.get("labels") or {}).get(k) for k in ("source", "class_field")},
                       "command": list(sys.argv)},
    }
