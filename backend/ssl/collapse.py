"""Representation-collapse monitor, for every method.

Two numbers per epoch, from up to ``max_samples`` embeddings of the epoch's last batches (detached, on device):

- ``std``: the mean over dimensions of the per-dimension standard deviation of the **L2-normalised** embeddings.
  Spread-out unit vectors in ``d`` dimensions give about ``1/sqrt(d)``; a collapsed representation (every input
  mapped to nearly the same vector) gives about 0 (SimSiam, Chen & He 2021, section 4). ``std_ratio`` is
  ``std * sqrt(d)``: about 1 when healthy.
- ``effective_rank``: ``exp`` of the entropy of the normalised singular values of the centred embeddings
  (Roy & Vetterli 2007): how many directions the embeddings really use (at most ``min(n, d)``). A dimensional
  collapse shows up here while ``std`` still looks fine.

The monitor watches the projection the loss sees (what collapses first) and the encoder features (what a model
package delivers). Collapse is declared when the projection's ``std_ratio`` drops below ``threshold`` (0.1 by
default: a tenth of the healthy value) or its effective rank below 1.5. A *dimensional* collapse (the
embeddings spread, but along a handful of the directions they could use) is reported separately by the pre-training
command: effective rank under 3% of ``min(samples, d)`` (``rank_fraction``). In the H100 runs of
``benchmarks/pretrain_quality.py`` (epochs of 512 samples) Barlow Twins ended at 6.3 of 512 (1.2%) with embeddings
worse than random init, while the methods that beat random init used 7-21%.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from lightly.utils.debug import std_of_l2_normalized

#: effective rank / min(samples, d) under which the final embeddings count as dimensionally collapsed (see above)
DIMENSIONAL_COLLAPSE = 0.03


@dataclass
class CollapseStats:
    std: float
    std_ratio: float
    effective_rank: float
    dim: int
    samples: int

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        return {f"{prefix}std": self.std, f"{prefix}std_ratio": self.std_ratio,
                f"{prefix}effective_rank": self.effective_rank}


def embedding_std(z: torch.Tensor) -> float:
    """Mean per-dimension std of the L2-normalised rows of ``z`` (N, d): lightly's ``std_of_l2_normalized``; NaN for
    fewer than two rows."""
    return float(std_of_l2_normalized(z.float())) if len(z) > 1 else float("nan")


def effective_rank(z: torch.Tensor, eps: float = 1e-12) -> float:
    """``exp(H(p))`` with ``p`` the singular values of the centred ``z`` divided by their sum."""
    z = z.float()
    if len(z) < 2:
        return float("nan")
    s = torch.linalg.svdvals(z - z.mean(dim=0, keepdim=True))
    total = s.sum()
    if total <= eps:
        return 1.0
    p = s / total
    p = p[p > eps]
    return float(torch.exp(-(p * p.log()).sum()))


def collapse_stats(z: torch.Tensor) -> CollapseStats:
    std = embedding_std(z)
    d = int(z.shape[1])
    return CollapseStats(std=std, std_ratio=std * math.sqrt(d), effective_rank=effective_rank(z), dim=d,
                         samples=int(z.shape[0]))


class CollapseMonitor:
    """Accumulates embeddings over an epoch (a bounded buffer) and summarises them at its end."""

    def __init__(self, max_samples: int = 1024, threshold: float = 0.1, min_rank: float = 1.5) -> None:
        self.max_samples = max_samples
        self.threshold = threshold
        self.min_rank = min_rank
        self._proj: list[torch.Tensor] = []
        self._feat: list[torch.Tensor] = []
        self._n = 0

    def update(self, projection: torch.Tensor, features: torch.Tensor | None = None) -> None:
        """Keep the most recent ``max_samples`` rows (the end of the epoch is what the report is about)."""
        self._proj.append(projection.detach().float())
        if features is not None:
            self._feat.append(features.detach().float())
        self._n += len(projection)
        while self._proj and self._n - len(self._proj[0]) >= self.max_samples:
            self._n -= len(self._proj.pop(0))
            if self._feat:
                self._feat.pop(0)

    def compute(self, reset: bool = True) -> dict[str, float] | None:
        """``collapse/*`` numbers for the epoch, or None if nothing was seen."""
        if not self._proj:
            return None
        proj = collapse_stats(torch.cat(self._proj)[-self.max_samples:])
        out = {f"collapse/{k}": v for k, v in proj.as_dict().items()}
        out["collapse/rank_fraction"] = proj.effective_rank / max(1, min(proj.samples, proj.dim))
        if self._feat:
            feat = collapse_stats(torch.cat(self._feat)[-self.max_samples:])
            out.update({f"collapse/encoder_{k}": v for k, v in feat.as_dict().items()})
        out["collapse/collapsed"] = float(self.is_collapsed(proj))
        if reset:
            self._proj, self._feat, self._n = [], [], 0
        return out

    def is_collapsed(self, stats: CollapseStats) -> bool:
        return (math.isfinite(stats.std_ratio) and stats.std_ratio < self.threshold) or (
            math.isfinite(stats.effective_rank) and stats.effective_rank < self.min_rank)


def collapse_summary(history: list[dict[str, Any]], threshold: float, measured_on: str) -> dict[str, Any]:
    """What a pre-trained package's ``model.json`` says of collapse (``collapse``), from the ``collapse/*`` numbers
    of a run's epochs (:meth:`CollapseMonitor.compute`): the last epoch's, the epochs that collapsed, and whether the
    last one shows a dimensional collapse. Encoder numbers are None where the method monitors the projection only."""
    last = next((h for h in reversed(history) if h.get("collapse/std") is not None), {})
    return {
        "embedding_std": last.get("collapse/std"), "std_ratio": last.get("collapse/std_ratio"),
        "effective_rank": last.get("collapse/effective_rank"),
        "encoder_embedding_std": last.get("collapse/encoder_std"),
        "encoder_effective_rank": last.get("collapse/encoder_effective_rank"),
        "collapsed": bool(last.get("collapse/collapsed")) if last else None,
        "collapsed_epochs": sorted({int(h["epoch"]) + 1 for h in history if h.get("collapse/collapsed")}),
        "threshold": f"std x sqrt(d) < {threshold} or effective rank < 1.5",
        "rank_fraction": last.get("collapse/rank_fraction"),
        "dimensional_collapse": bool(last.get("collapse/rank_fraction", 1.0) < DIMENSIONAL_COLLAPSE),
        "measured_on": measured_on,
    }
