"""Fine-tuning's validation numbers come from torchmetrics (which also sums them over DDP ranks) and Lightning's
``trainer.validate``: they must be the numbers the hand-written confusion matrix and validation pass gave.

A fixed (seeded, untrained) classifier on the real EuroSAT-MS chips is scored both ways.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassConfusionMatrix

from backend.data.chipstore import ChipStore
from backend.report.metrics import confusion, scores
from backend.train import finetune as ft
from backend.train import runner
from tests.backend.model_helpers import eurosat_store


def test_torchmetrics_confusion_is_the_hand_written_one():
    """Per-pixel labels with ignored (-1) entries, as segmentation batches have them."""
    g = torch.Generator().manual_seed(0)
    k = 5
    target = torch.randint(-1, k, (4, 32, 32), generator=g)
    pred = torch.randint(0, k, (4, 32, 32), generator=g)
    metric = MulticlassConfusionMatrix(k, ignore_index=-1, validate_args=False)
    for i in range(4):  # accumulated batch by batch, as in validation
        metric.update(pred[i], target[i])
    cm = metric.compute()
    assert torch.equal(cm, confusion(target, pred, k))
    assert scores(cm.numpy()) == scores(confusion(target, pred, k).numpy())


@pytest.fixture(scope="module")
def store(shared_data, tmp_path_factory) -> Path:
    return eurosat_store(shared_data, tmp_path_factory.getbasetemp())


def test_trainer_validate_scores_like_the_manual_pass(store, tmp_path):
    st = ChipStore(store)
    init = ft.load_init("random", "resnet18")
    spec, picks = ft.input_spec(st, init, None)
    data = ft.build_task_data(st, "classification", spec, picks)
    assert data.val is not None
    torch.manual_seed(0)
    net = ft.build_net("classification", init, spec, len(data.classes), head="linear").eval()
    k = len(data.classes)
    loader = ft.val_loader(data, 16)

    # by hand: the confusion matrix and the mean cross-entropy over every validation chip
    manual = ft.confusion_on(net, loader, torch.device("cpu"), k)
    with torch.no_grad():
        losses = [(F.cross_entropy(net(b["x"]), b["label"], reduction="sum"), len(b["label"])) for b in loader]
    manual_loss = float(sum(float(s) for s, _ in losses) / sum(n for _, n in losses))

    cfg = runner.TrainConfig(devices="cpu", num_workers=0)
    device = runner.resolve_device("cpu")
    trainer = runner.build_trainer(cfg, device)
    module = ft.FinetuneModule(net, k, best_metric=None)
    trainer.validate(module, loader, verbose=False)
    logged = {k: float(v) for k, v in trainer.callback_metrics.items()}
    assert module.last_confusion is not None
    cm = module.last_confusion.numpy()
    assert np.array_equal(cm, manual) and int(cm.sum()) == len(data.val)
    assert logged["val/loss"] == pytest.approx(manual_loss, rel=1e-6)
    assert logged["val/oa"] == pytest.approx(scores(manual)["oa"], rel=1e-6)  # logged as float32
