"""Tree ensembles (scikit-learn's random forest and histogram gradient boosting) as plain tensors and a torch module.

A fitted scikit-learn ensemble is turned into padded arrays (one row per tree: split feature, threshold, children,
leaf values) that live in ``weights.safetensors`` like any other weights: a package never holds a pickle, and loading
one never runs code. :class:`TreeEnsemble` evaluates them on any torch device, all trees at once, one tree level per
step (a gather per level), so a random forest predicts inside ``eo-ssl predict``'s tiled pipeline on a GPU. On the
CPU the same tables are handed to scikit-learn's compiled tree walker (``sklearn.tree._tree.Tree``, rebuilt from the
arrays through its pickle state, one tree per thread): 15-20x faster there than gathers level by level, which visit
every level of the deepest tree for every pixel.

Exactness: scikit-learn compares float32 features (forests) or float64 ones (gradient boosting) with float64
thresholds, ``x <= t`` going left. The features here are float32, so every threshold is stored as the largest float32
not above it: for any float32 ``x``, ``x <= t32`` exactly when ``x <= t``, and the predictions equal scikit-learn's
(checked in the tests).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from torch import nn

#: what ``forward`` returns for each kind: forests average leaf class frequencies (probabilities), boosting sums raw
#: scores (logits). Both are turned into logits so that predict's blending (a weighted mean of logits) treats every
#: model alike.
KINDS = ("forest", "boosting")
_EPS = 1e-6


def _threshold32(t: np.ndarray) -> np.ndarray:
    """The largest float32 <= each float64 threshold (see the module docstring)."""
    t32 = t.astype(np.float32)
    above = t32.astype(np.float64) > t
    t32[above] = np.nextafter(t32[above], np.float32(-np.inf))
    return t32


def _pack(trees: list[dict[str, np.ndarray]], n_values: int) -> dict[str, torch.Tensor]:
    """Pad per-tree node arrays to one (n_trees, max_nodes) table per field."""
    n = max(len(t["feature"]) for t in trees)
    out = {"feature": np.zeros((len(trees), n), np.int32), "threshold": np.zeros((len(trees), n), np.float32),
           "left": np.zeros((len(trees), n), np.int32), "right": np.zeros((len(trees), n), np.int32),
           "value": np.zeros((len(trees), n, n_values), np.float32)}
    depth = 0
    for i, t in enumerate(trees):
        m = len(t["feature"])
        leaf = t["left"] < 0
        # a leaf points at itself, so a sample that reached it stays there for the remaining steps
        own = np.arange(m, dtype=np.int32)
        out["feature"][i, :m] = np.where(leaf, 0, t["feature"])
        out["threshold"][i, :m] = _threshold32(t["threshold"])
        out["left"][i, :m] = np.where(leaf, own, t["left"])
        out["right"][i, :m] = np.where(leaf, own, t["right"])
        out["value"][i, :m] = t["value"]
        depth = max(depth, int(t["depth"]))
    tensors = {k: torch.from_numpy(v) for k, v in out.items()}
    tensors["depth"] = torch.tensor([depth], dtype=torch.int32)
    return tensors


def _node_depths(left: np.ndarray, right: np.ndarray) -> int:
    depth = np.zeros(len(left), np.int64)
    for i in range(len(left)):  # children come after their parent in scikit-learn's node order
        if left[i] >= 0:
            depth[left[i]] = depth[right[i]] = depth[i] + 1
    return int(depth.max())


def forest_tensors(model: Any) -> dict[str, torch.Tensor]:
    """The tensors of a fitted ``RandomForestClassifier`` (or ``ExtraTreesClassifier``)."""
    trees = []
    k = len(model.classes_)
    for est in model.estimators_:
        t = est.tree_
        value = t.value[:, 0, :].astype(np.float64)
        value = value / np.maximum(value.sum(1, keepdims=True), 1e-12)  # class frequencies at each node
        # a forest fits its trees on class indices (0..k-1), so a tree's classes_ are columns of the forest's
        full = np.zeros((len(value), k))
        full[:, np.asarray(est.classes_, np.int64)] = value
        trees.append({"feature": t.feature.astype(np.int32), "threshold": t.threshold.astype(np.float64),
                      "left": t.children_left.astype(np.int32), "right": t.children_right.astype(np.int32),
                      "value": full, "depth": _node_depths(t.children_left, t.children_right)})
    out = _pack(trees, k)
    out["kind"] = torch.tensor([0], dtype=torch.int32)
    out["baseline"] = torch.zeros(k)
    return out


def boosting_tensors(model: Any) -> dict[str, torch.Tensor]:
    """The tensors of a fitted ``HistGradientBoostingClassifier`` (numeric features, no missing values at predict).

    One tree per class and iteration (one per iteration for two classes); a tree's leaf values go to its class's
    column, and the raw score is the baseline plus the sum over trees.
    """
    k = len(model.classes_)
    per_iter = model._predictors  # noqa: SLF001 - the fitted trees; scikit-learn has no public accessor
    cols = 1 if k == 2 else k
    trees = []
    for iteration in per_iter:
        for c, pred in enumerate(iteration):
            nodes = pred.nodes
            if np.any(nodes["is_categorical"]):
                raise ValueError("categorical splits are not supported")
            leaf = nodes["is_leaf"].astype(bool)
            value = np.zeros((len(nodes), cols))
            value[leaf, c] = nodes["value"][leaf]
            left = np.where(leaf, -1, nodes["left"]).astype(np.int32)
            right = np.where(leaf, -1, nodes["right"]).astype(np.int32)
            trees.append({"feature": nodes["feature_idx"].astype(np.int32),
                          "threshold": nodes["num_threshold"].astype(np.float64), "left": left, "right": right,
                          "value": value, "depth": int(nodes["depth"].max())})
    out = _pack(trees, cols)
    out["kind"] = torch.tensor([1], dtype=torch.int32)
    out["baseline"] = torch.from_numpy(np.asarray(model._baseline_prediction, np.float32).reshape(-1))  # noqa: SLF001
    return out


class TreeEnsemble(nn.Module):
    """(N, F) float32 features -> (N, K) logits of a packed forest or boosted ensemble (see :func:`forest_tensors`,
    :func:`boosting_tensors`). The tables are buffers: ``state_dict`` holds everything, as plain tensors."""

    def __init__(self, tensors: dict[str, torch.Tensor], chunk: int = 65536) -> None:
        super().__init__()
        for name in ("feature", "threshold", "left", "right", "value", "depth", "kind", "baseline"):
            self.register_buffer(name, tensors[name].clone())
        self.chunk = chunk
        self._cpu_trees: list[Any] | None = None

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._cpu_trees = None  # rebuilt from the new tables on the next CPU call

    @classmethod
    def empty(cls, n_trees: int, n_nodes: int, n_values: int) -> TreeEnsemble:
        """An ensemble of the right shapes, for ``load_state_dict``."""
        z = torch.zeros
        return cls({"feature": z(n_trees, n_nodes, dtype=torch.int32), "threshold": z(n_trees, n_nodes),
                    "left": z(n_trees, n_nodes, dtype=torch.int32), "right": z(n_trees, n_nodes, dtype=torch.int32),
                    "value": z(n_trees, n_nodes, n_values), "depth": z(1, dtype=torch.int32),
                    "kind": z(1, dtype=torch.int32), "baseline": z(n_values)})

    def shape_info(self) -> dict[str, int]:
        return {"trees": int(self.feature.shape[0]), "nodes": int(self.feature.shape[1]),
                "values": int(self.value.shape[2])}

    @property
    def is_forest(self) -> bool:
        return int(self.kind[0]) == 0

    def leaves(self, x: torch.Tensor) -> torch.Tensor:
        """(N, n_trees) index of the leaf each sample reaches in each tree."""
        n_trees = self.feature.shape[0]
        tree = torch.arange(n_trees, device=x.device)
        node = torch.zeros((x.shape[0], n_trees), dtype=torch.long, device=x.device)
        feature, threshold = self.feature.long(), self.threshold
        left, right = self.left.long(), self.right.long()
        for _ in range(int(self.depth[0])):
            f = feature[tree, node]  # (N, n_trees)
            go_left = torch.gather(x, 1, f) <= threshold[tree, node]
            node = torch.where(go_left, left[tree, node], right[tree, node])
        return node

    def cpu_trees(self, n_features: int) -> list[Any]:
        """The tables as scikit-learn ``Tree`` objects (only their structure: leaf values stay in :attr:`value`)."""
        if self._cpu_trees is None or self._cpu_trees[0].n_features != n_features:
            from sklearn.tree._tree import NODE_DTYPE, Tree

            n_trees, n_nodes = self.feature.shape
            own = np.arange(n_nodes)
            trees = []
            for i in range(n_trees):
                left, right = self.left[i].cpu().numpy(), self.right[i].cpu().numpy()
                leaf = left == own  # see _pack: a leaf points at itself (padding: unreachable nodes)
                nodes = np.zeros(n_nodes, NODE_DTYPE)
                nodes["left_child"] = np.where(leaf, -1, left)
                nodes["right_child"] = np.where(leaf, -1, right)
                nodes["feature"] = np.where(leaf, -2, self.feature[i].cpu().numpy())
                nodes["threshold"] = np.where(leaf, -2.0, self.threshold[i].cpu().numpy().astype(np.float64))
                tree = Tree(n_features, np.array([1], np.intp), 1)
                tree.__setstate__({"max_depth": int(self.depth[0]), "node_count": n_nodes, "nodes": nodes,
                                   "values": np.zeros((n_nodes, 1, 1))})
                trees.append(tree)
            self._cpu_trees = trees
        return self._cpu_trees

    def _values_cpu(self, x: torch.Tensor) -> torch.Tensor:
        """(N, K) sum over trees of each sample's leaf values, walked by scikit-learn (threads share the trees)."""
        xs = np.ascontiguousarray(x.numpy(), dtype=np.float32)
        value = self.value.numpy()
        trees = self.cpu_trees(xs.shape[1])

        def part(idx: range) -> np.ndarray:
            total = np.zeros((len(xs), value.shape[2]), np.float32)
            for i in idx:
                total += value[i][trees[i].apply(xs)]
            return total

        n = min(len(trees), torch.get_num_threads()) if len(xs) > 1024 else 1
        if n <= 1:
            return torch.from_numpy(part(range(len(trees))))
        with ThreadPoolExecutor(n) as pool:
            return torch.from_numpy(sum(pool.map(part, [range(j, len(trees), n) for j in range(n)])))

    def _values(self, x: torch.Tensor) -> torch.Tensor:
        """(N, K) sum over trees of each sample's leaf values."""
        if x.device.type == "cpu":
            return self._values_cpu(x)
        tree = torch.arange(self.feature.shape[0], device=x.device)
        return self.value[tree, self.leaves(x)].sum(1)  # (n, n_trees, K) -> (n, K)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        outs = []
        n_trees = self.feature.shape[0]
        for i in range(0, x.shape[0], self.chunk):
            total = self._values(x[i:i + self.chunk])
            if self.is_forest:
                outs.append(torch.log((total / n_trees).clamp_min(_EPS)))
            else:
                raw = total + self.baseline
                if raw.shape[1] == 1:  # binary boosting: one score s, logits (0, s) give sigmoid(s) for class 1
                    raw = torch.cat([torch.zeros_like(raw), raw], dim=1)
                outs.append(raw)
        return torch.cat(outs) if outs else torch.zeros((0, self.num_classes), device=x.device)

    @property
    def num_classes(self) -> int:
        k = int(self.value.shape[2])
        return 2 if (not self.is_forest and k == 1) else k
