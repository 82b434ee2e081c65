"""``eo-ssl finetune --arch pixel``: the pixel classifier as a command (see :mod:`backend.pixel.train`), written as a
model package that ``eo-ssl predict`` maps like any other."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from backend.data.chipstore import ChipStore
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
from backend.pixel.train import (
    PixelFit,
    embedding_spec,
    fit_pixel_classifier,
    labelled_pixels,
    pixel_input,
    sample_by_parcel,
    score_pixels,
)
from backend.report.metrics import headline

#: validation pixels scored at most (spread over the validation parcels)
MAX_VAL_PIXELS = 200_000


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
    inp = pixel_input(store, args.date)
    seed = int(args.seed or 0)
    keep, used, total = keep_mask(store, args.label_fraction, seed)
    train_px = labelled_pixels(store, inp, "train", keep)
    if len(train_px) == 0:
        raise EoSslError("no_samples", f"No labelled training pixel with valid imagery in {store.path}.",
                         "Check the parcels, the split and the label fraction.")
    # parcels whose every pixel is clouded count as none: what the classifier really sees, per class
    train_parcels_of = {c["name"]: len(np.unique(train_px.parcels[train_px.labels == c["id"]])) for c in classes}
    check_training_classes(train_parcels_of, events.warning)
    train_px = sample_by_parcel(train_px, args.max_pixels, seed)
    emb, enc_state = None, None
    if init is not None and init.kind != "none":
        if init.kind == "random":
            from backend.models.encoders import create_encoder

            enc_state = create_encoder(init.encoder, len([c for b in inp.blocks for c in b.bands])).state_dict()
            meta = {"architecture": {"family": "timm", "encoder": init.encoder,
                                     "in_chans": sum(len(b.bands) for b in inp.blocks)},
                    "input": {"channels": [[b.sensor, band] for b in inp.blocks for band in b.bands]}}
        else:
            enc_state, meta = init.encoder_state, init.meta
        emb = embedding_spec(meta, inp, args.embedding_dim, None, init.provenance())
    dates = ", ".join(f"{b.sensor.upper()} {len(b.dates)} date(s)" for b in inp.blocks)
    events.log(f"pixel classifier ({args.classifier}) on {store.path}: {k} classes; {len(train_px)} training "
               f"pixels of {used} of {total} training parcels (label fraction {args.label_fraction:g}); {dates}"
               + (f"; embedding of {init.label}" if emb is not None else "; spectra only"))
    events.progress(0, 2, stage="pixel classifier")
    fit = fit_pixel_classifier(store, inp, train_px, k, classifier=args.classifier, embedding=emb,
                               encoder_state=enc_state, seed=seed, events=events, smooth=args.smooth)
    events.check_cancel()
    events.progress(1, 2, stage="pixel classifier")
    val_px = labelled_pixels(store, inp, "val")
    val_scores, cm = None, None
    if len(val_px):
        cm, val_scores = score_pixels(fit.model, store, inp, sample_by_parcel(val_px, MAX_VAL_PIXELS, seed), k,
                                      names)
    else:
        events.warning("no_validation", f"{store.path} has no validation parcels: the package has no held-out "
                       "score. Prepare the store with --val-fraction above 0 to know what the map is worth.")
    val_parcels = parcels_per_class(store, "val")
    warn_few_validation_parcels(val_parcels, events.warning)
    events.progress(2, 2, stage="pixel classifier")
    meta = package_meta(store, fit, inp, classes, args, init, val_scores, cm, used, total, val_parcels)
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
    return summary


def package_meta(store: ChipStore, fit: PixelFit, inp: Any, classes: list[dict[str, Any]], args: argparse.Namespace,
                 init: Any, val_scores: dict[str, Any] | None, cm: np.ndarray | None, used: int, total: int,
                 val_parcels: dict[str, int]) -> dict[str, Any]:
    """``model.json`` of a pixel classifier (see docs/DESIGN.md)."""
    from backend.train.finetune import grid_resolution

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
    return {
        "task": "segmentation", "method": "supervised", "variant": None,
        "architecture": model.describe(),
        "input": {"channels": channels, "channel_mode": "stack", "layout": "sensor-date-band",
                  "dates": {b.sensor: b.dates for b in inp.blocks},
                  "time_steps": max(len(b.dates) for b in inp.blocks), "crop": None,
                  "date_rule": "given (--date)" if args.date else "every date of the store"},
        "grid": {"resolution": resolution, "resolution_source": res_source,
                 "epsg": (manifest.get("grid") or {}).get("epsg")},
        "normalization": normalization, "normalization_source": "training data",
        "classes": [{"id": c["id"], "name": c["name"], "colour": c["colour"]} for c in classes],
        "training": {"classifier": model.classifier, "classifier_text": CLASSIFIERS[model.classifier].text,
                     "asked": args.classifier,
                     "selection": ({"method": f"{fit.selection.folds}-fold cross-validation grouped by parcel on the "
                                    "training parcels (mIoU)", "candidates": fit.selection.table}
                                   if fit.selection is not None else None),
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
