"""Classification / segmentation metrics from a confusion matrix (rows = reference, columns = prediction).

One confusion matrix is accumulated over the whole validation set (pixels or chips) and every number is derived from
it, so the metrics of a segmentation model are over pixels, not averages of per-batch numbers.

The matrix is torchmetrics' (:func:`confusion`; ``finetune`` accumulates the same one with
``MulticlassConfusionMatrix``). The scores are read off the matrix here, not recomputed by torchmetrics from labels:
it has no scores-from-a-matrix function (rebuilding the labels of a map's confusion matrix would take memory in the
number of pixels), and its macro means count a class that is absent from the reference as 0 where ours leave it out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch


def confusion(target: torch.Tensor, pred: torch.Tensor, num_classes: int, ignore_index: int = -1) -> torch.Tensor:
    """(K, K) int64 counts of (reference, predicted) over the entries of ``target`` that are not ``ignore_index``."""
    from torchmetrics.functional.classification import multiclass_confusion_matrix

    return multiclass_confusion_matrix(pred.long(), target.long(), num_classes, ignore_index=ignore_index,
                                       validate_args=False)


def scores(cm: np.ndarray | torch.Tensor, class_names: Sequence[str] | None = None) -> dict[str, Any]:
    """OA, macro F1, average accuracy (mean per-class recall), per-class IoU / F1 / recall / precision, mIoU.

    Classes absent from the reference *and* never predicted are left out of the means (their scores are NaN,
    written as null in JSON); a class that is present but never predicted right counts with 0.
    """
    cm = np.asarray(cm.cpu() if isinstance(cm, torch.Tensor) else cm, dtype=np.float64)
    k = cm.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    tp = np.diag(cm)
    ref = cm.sum(axis=1)
    pred = cm.sum(axis=0)
    total = cm.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(ref > 0, tp / ref, np.nan)
        precision = np.where(pred > 0, tp / pred, np.where(ref > 0, 0.0, np.nan))
        union = ref + pred - tp
        iou = np.where(union > 0, tp / union, np.nan)
        f1 = np.where(ref + pred > 0, 2 * tp / (ref + pred), np.nan)
    present = ref > 0

    def mean(v: np.ndarray, mask: np.ndarray) -> float | None:
        vals = v[mask & np.isfinite(v)]
        return float(vals.mean()) if vals.size else None

    def per_class(v: np.ndarray) -> dict[str, float | None]:
        return {n: (float(x) if np.isfinite(x) else None) for n, x in zip(names, v)}

    return {
        "oa": float(tp.sum() / total) if total else None,
        "f1_macro": mean(f1, present),
        "aa": mean(recall, present),
        "miou": mean(iou, present),
        "iou_per_class": per_class(iou),
        "f1_per_class": per_class(f1),
        "recall_per_class": per_class(recall),
        "precision_per_class": per_class(precision),
        "support": {n: int(s) for n, s in zip(names, ref)},
        "n": int(total),
    }


HEADLINE = ("oa", "f1_macro", "aa", "miou")


def headline(s: dict[str, Any]) -> dict[str, float | None]:
    """The four summary numbers of :func:`scores`."""
    return {k: s.get(k) for k in HEADLINE}
