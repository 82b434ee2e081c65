"""report/metrics on torchmetrics: the same confusion matrix as the bincount it replaced, the same scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.report.metrics import confusion, headline, scores


def test_confusion_is_the_bincount_of_reference_and_prediction() -> None:
    gen = torch.Generator().manual_seed(0)
    target = torch.randint(-1, 5, (2, 3, 16, 16), generator=gen)  # -1: ignored pixels
    pred = torch.randint(0, 5, (2, 3, 16, 16), generator=gen)
    keep = target != -1
    expected = torch.bincount(target[keep] * 5 + pred[keep], minlength=25).reshape(5, 5)
    cm = confusion(target, pred, 5)
    assert cm.dtype == torch.int64 and torch.equal(cm, expected)
    assert int(cm.sum()) == int(keep.sum())


def test_confusion_of_fixed_labels() -> None:
    target = torch.tensor([0, 0, 1, 1, 1, 2, -1, 2])
    pred = torch.tensor([0, 1, 1, 1, 0, 2, 2, 0])
    assert confusion(target, pred, 3).tolist() == [[1, 1, 0], [1, 2, 0], [1, 0, 1]]


def test_scores_of_a_fixed_confusion_matrix() -> None:
    """Class 2 is absent from the reference and never predicted right (left out of the means); class 3 is present
    but never predicted (counts with 0)."""
    cm = np.array([[50, 3, 2, 0], [4, 30, 1, 0], [0, 0, 0, 0], [5, 0, 3, 0]])
    s = scores(cm, ["a", "b", "c", "d"])
    assert headline(s) == pytest.approx({"oa": 80 / 98, "f1_macro": 0.586515307877537, "aa": 0.5887445887445887,
                                         "miou": 0.5235745614035088})
    assert s["recall_per_class"] == pytest.approx({"a": 50 / 55, "b": 30 / 35, "c": None, "d": 0.0})
    assert s["precision_per_class"] == pytest.approx({"a": 50 / 59, "b": 30 / 33, "c": 0.0, "d": 0.0})
    assert s["iou_per_class"] == pytest.approx({"a": 50 / 64, "b": 30 / 38, "c": 0.0, "d": 0.0})
    assert s["support"] == {"a": 55, "b": 35, "c": 0, "d": 8} and s["n"] == 98
