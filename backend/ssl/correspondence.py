"""Views and pixel correspondences for dense contrastive learning (Embedding Earth).

Two views of one sample are two crops of the same read region, each possibly flipped. A ground pixel at
region coordinates (r, c) appears in a view with parameters (top, left, size, hflip, vflip) at

    i = r - top,  j = c - left,  then  i -> size-1-i  if vflip,  j -> size-1-j  if hflip.

:func:`sample_correspondences` draws ground pixels inside the overlap of the two crops and returns where each
one lies in both views, so that features taken there see the same place on the ground.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ViewParams:
    """Crop and flip parameters of one view for each sample of a batch (tensors of shape (B,))."""

    top: torch.Tensor
    left: torch.Tensor
    size: int
    hflip: torch.Tensor
    vflip: torch.Tensor

    def to_view(self, rows: torch.Tensor, cols: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Region coordinates (B, N) -> view pixel coordinates (B, N)."""
        i = rows - self.top[:, None]
        j = cols - self.left[:, None]
        i = torch.where(self.vflip[:, None], self.size - 1 - i, i)
        j = torch.where(self.hflip[:, None], self.size - 1 - j, j)
        return i, j


def sample_view_pair(batch: int, region: int, crop: int, min_overlap: float = 0.3, batch_level: bool = True,
                     generator: torch.Generator | None = None) -> tuple[ViewParams, ViewParams]:
    """Two crops of side ``crop`` inside a ``region`` x ``region`` read, overlapping by >= ``min_overlap`` of a crop.

    ``batch_level``: one crop position for the whole batch (as the paper), flips drawn per sample.
    """
    if crop > region:
        raise ValueError(f"crop {crop} > region {region}")
    max_shift = int((1 - min_overlap**0.5) * crop)  # equal shift in both axes keeps the area overlap >= min_overlap
    n = 1 if batch_level else batch

    def randint(lo: int, hi: int) -> torch.Tensor:  # inclusive bounds
        return torch.randint(lo, hi + 1, (n,), generator=generator)

    top_a, left_a = randint(0, region - crop), randint(0, region - crop)
    dt = randint(-max_shift, max_shift)
    dl = randint(-max_shift, max_shift)
    top_b = (top_a + dt).clamp(0, region - crop)
    left_b = (left_a + dl).clamp(0, region - crop)
    expand = (lambda t: t.expand(batch)) if batch_level else (lambda t: t)

    def flips() -> torch.Tensor:
        return torch.rand(batch, generator=generator) < 0.5

    a = ViewParams(expand(top_a), expand(left_a), crop, flips(), flips())
    b = ViewParams(expand(top_b), expand(left_b), crop, flips(), flips())
    return a, b


def apply_view(x: torch.Tensor, p: ViewParams) -> torch.Tensor:
    """Crop and flip a batch of regions (B, ..., H, W) into views (B, ..., size, size).

    One gather for the whole batch (no loop over samples: on a GPU a per-sample slice and flip is a few kernel
    launches each): view pixel (i, j) of sample k is region pixel (rows[k, i], cols[k, j]), with the flips folded
    into the index order."""
    b, size = x.shape[0], p.size
    ar = torch.arange(size, device=x.device)
    top, left = p.top.to(x.device)[:, None], p.left.to(x.device)[:, None]
    rows = torch.where(p.vflip.to(x.device)[:, None], top + size - 1 - ar, top + ar)  # (B, size)
    cols = torch.where(p.hflip.to(x.device)[:, None], left + size - 1 - ar, left + ar)
    flat = x.reshape(b, -1, x.shape[-2], x.shape[-1])  # (B, M, H, W)
    picked = flat[torch.arange(b, device=x.device)[:, None, None], :, rows[:, :, None], cols[:, None, :]]
    return picked.permute(0, 3, 1, 2).reshape(*x.shape[:-2], size, size)  # (B, size, size, M) -> (B, ..., s, s)


def sample_correspondences(a: ViewParams, b: ViewParams, n: int, generator: torch.Generator | None = None
                           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n`` ground pixels per sample in the overlap of views ``a`` and ``b``: (ia, ja, ib, jb), each (B, n).

    Pixels are drawn with replacement only when the overlap holds fewer than ``n`` pixels.
    """
    size = a.size
    r0 = torch.maximum(a.top, b.top)
    c0 = torch.maximum(a.left, b.left)
    r1 = torch.minimum(a.top, b.top) + size  # exclusive
    c1 = torch.minimum(a.left, b.left) + size
    h, w = (r1 - r0).clamp(min=0), (c1 - c0).clamp(min=0)
    if bool(((h == 0) | (w == 0)).any()):
        raise ValueError("the two views do not overlap")
    area = h * w
    u = torch.rand(a.top.shape[0], n, generator=generator)
    if int(area.min()) >= n:  # without replacement: random ranks of n distinct cells of each overlap
        keys = torch.rand(a.top.shape[0], int(area.max()), generator=generator)
        keys = keys.masked_fill(torch.arange(keys.shape[1])[None] >= area[:, None], 2.0)
        flat = keys.argsort(dim=1)[:, :n]
    else:
        flat = (u * area[:, None]).long()
    rows = r0[:, None] + flat // w[:, None]
    cols = c0[:, None] + flat % w[:, None]
    ia, ja = a.to_view(rows, cols)
    ib, jb = b.to_view(rows, cols)
    return ia, ja, ib, jb


def gather_pixels(features: torch.Tensor, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
    """Features (B, F, H, W) at pixels (B, N) -> (B, N, F)."""
    b, f, h, w = features.shape
    flat = features.flatten(2)  # (B, F, H*W)
    idx = (i * w + j).to(flat.device)
    return flat.gather(2, idx[:, None, :].expand(-1, f, -1)).transpose(1, 2)
