"""Pixel-level InfoNCE with a key queue (Embedding Earth, eq. 1).

Queries and keys are L2-normalised per-pixel embeddings at corresponding ground pixels: row m of ``q`` and
row m of ``k`` see the same place (positives on the diagonal); every other sampled pixel of the batch, in the
same sample or another, and every key in the queue is a negative.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DenseInfoNCELoss(nn.Module):
    def __init__(self, dim: int, queue_size: int = 67_200, temperature: float = 0.1) -> None:
        super().__init__()
        self.temperature = temperature
        self.queue_size = queue_size
        self.register_buffer("queue", F.normalize(torch.randn(queue_size, dim), dim=1))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))
        self.register_buffer("queue_filled", torch.zeros((), dtype=torch.long))

    def forward(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """``q``, ``k``: (M, D), L2-normalised; returns the mean InfoNCE over the M positives."""
        k = k.detach()
        logits_batch = q @ k.T  # (M, M): diagonal = positives
        parts = [logits_batch]
        n_queue = int(self.queue_filled)
        if n_queue:
            parts.append(q @ self.queue[:n_queue].clone().detach().T.to(q.dtype))
        logits = torch.cat(parts, dim=1) / self.temperature
        labels = torch.arange(q.shape[0], device=q.device)
        return F.cross_entropy(logits.float(), labels)

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Add keys (call after the optimiser step, with a few keys per sample)."""
        keys = keys.detach().to(self.queue.dtype)
        n = min(keys.shape[0], self.queue_size)
        ptr = int(self.queue_ptr)
        idx = (torch.arange(n, device=keys.device) + ptr) % self.queue_size
        self.queue[idx] = keys[:n]
        self.queue_ptr.fill_((ptr + n) % self.queue_size)
        self.queue_filled.fill_(min(self.queue_size, int(self.queue_filled) + n))
