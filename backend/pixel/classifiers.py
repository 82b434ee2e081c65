"""Per-pixel classifiers, a registry: name -> how to fit one on (N, F) features and turn it into a torch head.

Every classifier is fitted with scikit-learn's own estimator (or, for ``mlp``, a small torch loop) and then becomes a
torch module of plain tensors (:class:`LinearHead`, :class:`backend.pixel.trees.TreeEnsemble`, :class:`MLPHead`):
what a package stores is weights, never a pickle, and prediction runs on any torch device. Each head maps (N, F)
standardised features to (N, K) logits.

Defaults are scikit-learn's, with classes balanced (``class_weight="balanced"``): with a handful of polygons the
classes are never balanced in pixels, and an analyst's rare class (water, urban) must not vanish from the map.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from backend.pixel.trees import TreeEnsemble, boosting_tensors, forest_tensors


class LinearHead(nn.Linear):
    """Multinomial logistic regression: logits = W x + b."""


class MLPHead(nn.Sequential):
    """Two hidden layers (256, 128) with BatchNorm, ReLU and dropout."""

    def __init__(self, in_features: int, num_classes: int, hidden: tuple[int, int] = (256, 128),
                 dropout: float = 0.2) -> None:
        super().__init__(nn.Linear(in_features, hidden[0]), nn.BatchNorm1d(hidden[0]), nn.ReLU(inplace=True),
                         nn.Dropout(dropout), nn.Linear(hidden[0], hidden[1]), nn.BatchNorm1d(hidden[1]),
                         nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(hidden[1], num_classes))


@dataclass(frozen=True)
class Classifier:
    """A registry entry: ``fit(x, y, num_classes, seed) -> head``; ``empty(info, in_features, num_classes)`` builds
    a head of the stored shapes for loading; ``text`` says what it is in reports."""

    name: str
    text: str
    fit: Callable[[np.ndarray, np.ndarray, int, int], nn.Module]
    empty: Callable[[dict[str, Any], int, int], nn.Module]


def _balanced_weights(y: np.ndarray, num_classes: int) -> np.ndarray:
    """scikit-learn's "balanced" class weights (n / (classes present x count)) of the classes present in ``y``, 0 for
    the classes absent from it."""
    from sklearn.utils.class_weight import compute_class_weight

    present = np.unique(y)
    w = np.zeros(num_classes)
    w[present] = compute_class_weight("balanced", classes=present, y=y)
    return w


def fit_linear(x: np.ndarray, y: np.ndarray, num_classes: int, seed: int) -> nn.Module:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=2000, class_weight="balanced", random_state=seed).fit(x, y)
    head = LinearHead(x.shape[1], num_classes)
    weight = np.zeros((num_classes, x.shape[1]), np.float32)
    bias = np.full(num_classes, -1e4, np.float32)  # classes absent from the training pixels: never predicted
    coef, intercept = model.coef_, model.intercept_
    if len(model.classes_) == 2:  # scikit-learn keeps one row for two classes: logits (0, s)
        coef, intercept = np.concatenate([np.zeros_like(coef), coef]), np.concatenate([[0.0], intercept])
    weight[model.classes_] = coef
    bias[model.classes_] = intercept
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(weight))
        head.bias.copy_(torch.from_numpy(bias))
    return head


def _full_classes(tensors: dict[str, torch.Tensor], classes: np.ndarray, num_classes: int) -> dict[str, torch.Tensor]:
    """Spread the value columns of an ensemble fitted on ``classes`` over all ``num_classes`` (absent ones: never)."""
    if len(classes) == num_classes:
        return tensors
    value, base = tensors["value"], tensors["baseline"]
    if value.shape[2] == 1:  # binary boosting: turn its one score into two columns first
        value = torch.cat([torch.zeros_like(value), value], 2)
        base = torch.cat([torch.zeros_like(base), base])
    full = torch.zeros((*value.shape[:2], num_classes))
    full_base = torch.full((num_classes,), -1e4 if int(tensors["kind"][0]) == 1 else 0.0)
    full[:, :, torch.from_numpy(classes)] = value
    full_base[torch.from_numpy(classes)] = base
    return {**tensors, "value": full, "baseline": full_base}


def fit_forest(x: np.ndarray, y: np.ndarray, num_classes: int, seed: int) -> nn.Module:
    from sklearn.ensemble import RandomForestClassifier

    model = RandomForestClassifier(n_estimators=100, class_weight="balanced", n_jobs=-1, random_state=seed).fit(x, y)
    return TreeEnsemble(_full_classes(forest_tensors(model), model.classes_, num_classes))


def fit_boosting(x: np.ndarray, y: np.ndarray, num_classes: int, seed: int) -> nn.Module:
    from sklearn.ensemble import HistGradientBoostingClassifier

    # early stopping on a held-out tenth of the pixels (scikit-learn turns it on only past 10,000 samples): with few
    # parcels the loss stops improving after a few dozen rounds, and each round costs one tree per class
    counts = np.bincount(y)
    stop = len(y) >= 200 and counts[counts > 0].min() >= 10  # its validation split is stratified by class
    model = HistGradientBoostingClassifier(class_weight="balanced", early_stopping=bool(stop),
                                           random_state=seed).fit(x, y)
    return TreeEnsemble(_full_classes(boosting_tensors(model), model.classes_, num_classes))


def fit_mlp(x: np.ndarray, y: np.ndarray, num_classes: int, seed: int, epochs: int = 60,
            batch_size: int = 256) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    head = MLPHead(x.shape[1], num_classes)
    xt, yt = torch.from_numpy(x).float(), torch.from_numpy(y).long()
    weight = torch.from_numpy(_balanced_weights(y, num_classes)).float()
    opt = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=1e-2)
    steps = epochs * max(1, len(xt) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    head.train()
    step = 0
    while step < steps:
        order = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt) - 1, batch_size):
            sel = order[i:i + batch_size]
            if len(sel) < 2 or step >= steps:
                continue
            loss = F.cross_entropy(head(xt[sel]), yt[sel], weight=weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
    return head.eval()


class VoteHead(nn.Module):
    """A soft vote: the log of the mean of its members' class probabilities (``members`` names them in order)."""

    def __init__(self, members: list[str], heads: list[nn.Module]) -> None:
        super().__init__()
        self.members = list(members)
        self.heads = nn.ModuleList(heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = torch.stack([h(x).softmax(1) for h in self.heads]).mean(0)
        return probs.clamp_min(1e-12).log()


#: the members of ``vote``: a linear and a non-linear view of the spectra. With a handful of parcels either one alone
#: is a coin toss (which one wins changes from draw to draw); their mean probabilities beat both on held-out parcels
#: (benchmarks/results/pixel_ablation.md). Gradient boosting is left out: it needs more pixels than a few parcels give.
VOTE_MEMBERS = ("linear", "rf")


def fit_vote(x: np.ndarray, y: np.ndarray, num_classes: int, seed: int) -> nn.Module:
    return VoteHead(list(VOTE_MEMBERS), [CLASSIFIERS[m].fit(x, y, num_classes, seed) for m in VOTE_MEMBERS])


def _empty_trees(info: dict[str, Any], in_features: int, num_classes: int) -> nn.Module:
    return TreeEnsemble.empty(int(info["trees"]), int(info["nodes"]), int(info["values"]))


def _empty_vote(info: dict[str, Any], in_features: int, num_classes: int) -> nn.Module:
    members = [str(m) for m in info["members"]]
    return VoteHead(members, [CLASSIFIERS[m].empty(i, in_features, num_classes)
                              for m, i in zip(members, info["infos"])])


CLASSIFIERS: dict[str, Classifier] = {c.name: c for c in (
    Classifier("linear", "logistic regression (scikit-learn, balanced classes)", fit_linear,
               lambda info, f, k: LinearHead(f, k)),
    Classifier("rf", "random forest (scikit-learn, 100 trees, balanced classes)", fit_forest, _empty_trees),
    Classifier("gbm", "gradient boosting (scikit-learn HistGradientBoosting, balanced classes, early stopping)",
               fit_boosting,
               _empty_trees),
    Classifier("mlp", "MLP (256-128, BatchNorm, dropout 0.2, AdamW, balanced classes)", fit_mlp,
               lambda info, f, k: MLPHead(f, k)),
    Classifier("vote", "soft vote of logistic regression and random forest (their class probabilities averaged)",
               fit_vote, _empty_vote),
)}


def head_info(head: nn.Module) -> dict[str, Any]:
    """What :attr:`Classifier.empty` needs to rebuild ``head`` before loading its weights."""
    if isinstance(head, VoteHead):
        return {"members": head.members, "infos": [head_info(h) for h in head.heads]}
    return head.shape_info() if isinstance(head, TreeEnsemble) else {}
