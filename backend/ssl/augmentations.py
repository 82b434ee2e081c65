"""Batch augmentations for multispectral / SAR views, on whatever device the batch is on.

Geometric and blur/erasing operations are kornia's. Written here only what kornia does not do for standardised
multi-band data: kornia's colour operations (brightness, contrast, greyscale) assume RGB images in [0, 1] and clamp
to that range, which would destroy standardised reflectances (mean 0, std 1, negative values), so:

- :class:`RandomBandGreyscale`: every band replaced by a weighted mean of the bands (equal weights by default:
  there is no luminance formula for 13 bands);
- :class:`RandomBrightnessContrast`: ``x * c + b`` per sample, contrast around each band's spatial mean;
- :class:`RandomChannelDrop`: a random subset of bands set to 0 (= the band mean after standardisation).

Every class takes and returns ``(B, C, H, W)`` float tensors and draws its own per-sample parameters (global torch
RNG, so runs are reproducible with a seed). No hue or saturation jitter: they mean nothing for multispectral data.
"""

from __future__ import annotations

from collections.abc import Sequence

import kornia.augmentation as K
import torch
from torch import nn


def _coin(batch: int, p: float, device: torch.device) -> torch.Tensor:
    """(B,) bool: which samples an augmentation applies to."""
    return torch.rand(batch, device=device) < p


class RandomBandGreyscale(nn.Module):
    """With probability ``p`` per sample, every band becomes the (weighted) mean of all bands."""

    def __init__(self, p: float = 0.2, weights: Sequence[float] | None = None) -> None:
        super().__init__()
        self.p = p
        self.weights = None if weights is None else torch.tensor(list(weights), dtype=torch.float32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p <= 0:
            return x
        if self.weights is None:
            grey = x.mean(dim=1, keepdim=True)
        else:
            w = (self.weights / self.weights.sum()).to(x)
            grey = (x * w.view(1, -1, 1, 1)).sum(dim=1, keepdim=True)
        apply = _coin(x.shape[0], self.p, x.device).view(-1, 1, 1, 1)
        return torch.where(apply, grey.expand_as(x), x)


class RandomBrightnessContrast(nn.Module):
    """With probability ``p`` per sample: contrast ``c ~ U(1-contrast, 1+contrast)`` around the band mean, then
    brightness ``b ~ U(-brightness, brightness)`` (in standard deviations), the same for all bands of a sample."""

    def __init__(self, brightness: float = 0.4, contrast: float = 0.4, p: float = 0.8) -> None:
        super().__init__()
        self.brightness, self.contrast, self.p = brightness, contrast, p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p <= 0:
            return x
        b = x.shape[0]
        apply = _coin(b, self.p, x.device).view(-1, 1, 1, 1).to(x.dtype)
        c = 1 + (torch.rand(b, 1, 1, 1, device=x.device, dtype=x.dtype) * 2 - 1) * self.contrast
        shift = (torch.rand(b, 1, 1, 1, device=x.device, dtype=x.dtype) * 2 - 1) * self.brightness
        mean = x.mean(dim=(2, 3), keepdim=True)
        out = (x - mean) * c + mean + shift
        return apply * out + (1 - apply) * x


class RandomChannelDrop(nn.Module):
    """With probability ``p`` per sample, zero each band with probability ``drop`` (never all bands)."""

    def __init__(self, p: float = 0.5, drop: float = 0.25) -> None:
        super().__init__()
        self.p, self.drop = p, drop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p <= 0 or x.shape[1] < 2:
            return x
        b, c = x.shape[:2]
        keep = torch.rand(b, c, device=x.device) >= self.drop
        none_kept = ~keep.any(dim=1)
        keep[none_kept, torch.randint(c, (int(none_kept.sum()),), device=x.device)] = True
        apply = _coin(b, self.p, x.device).view(-1, 1)
        keep = keep | ~apply
        return x * keep.view(b, c, 1, 1).to(x.dtype)


class RandomGreyscaleIf3(nn.Module):
    """RS-BYOL's random greyscale: only for 3-channel views (band mean); a no-op on 1-channel views."""

    def __init__(self, p: float = 0.2) -> None:
        super().__init__()
        self.grey = RandomBandGreyscale(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.grey(x) if x.shape[1] == 3 else x


class RandomResizedCrop(nn.Module):
    """kornia's random resized crop, cropping by slicing on the CPU (cheapest there) and by one batched affine warp
    on a GPU (slicing loops over the samples: one small kernel launch each)."""

    def __init__(self, size: int, scale: tuple[float, float], resample: str) -> None:
        super().__init__()
        self.slice = K.RandomResizedCrop((size, size), scale=scale, resample=resample, cropping_mode="slice")
        self.warp = K.RandomResizedCrop((size, size), scale=scale, resample=resample, cropping_mode="resample")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.warp(x) if x.is_cuda else self.slice(x)


def _blur_kernel(size: int) -> int:
    """About a tenth of the crop, odd, at least 3 (SimCLR's rule)."""
    k = max(3, int(round(size * 0.1)))
    return k if k % 2 else k + 1


class ViewAugment(nn.Module):
    """A sequence of batch augmentations (kornia modules and the ones above), applied per sample."""

    def __init__(self, ops: Sequence[nn.Module]) -> None:
        super().__init__()
        self.ops = nn.ModuleList(ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()  # augment in fp32 even under AMP (bicubic resampling overshoots in half)
        for op in self.ops:
            x = op(x)
        return x


def rs_byol_augment(crop: int, scale: tuple[float, float] = (0.2, 1.0), rotation: float = 90.0,
                    blur_p: float = 0.5, erase_p: float = 0.25, grey_p: float = 0.2) -> ViewAugment:
    """RS-BYOL: random resized crop (bicubic), flips, rotation, Gaussian blur, random erasing, random greyscale
    for 3-channel views. No colour jitter."""
    return ViewAugment([
        RandomResizedCrop(crop, scale, "BICUBIC"),
        K.RandomHorizontalFlip(),
        K.RandomVerticalFlip(),
        K.RandomRotation(degrees=rotation, p=0.5),
        K.RandomGaussianBlur(_blur_kernel(crop), sigma=(0.1, 2.0), p=blur_p),
        K.RandomErasing(scale=(0.02, 0.2), p=erase_p),
        RandomGreyscaleIf3(grey_p),
    ])


def ssl4eo_augment(crop: int, scale: tuple[float, float] = (0.2, 1.0), grey_p: float = 0.2, blur_p: float = 0.5,
                   drop_p: float = 0.5, brightness: float = 0.4, contrast: float = 0.4,
                   jitter_p: float = 0.8) -> ViewAugment:
    """The SSL4EO-S12 set-up: random resized crop, brightness/contrast, band-weighted greyscale, Gaussian blur,
    flips and channel drop."""
    return ViewAugment([
        RandomResizedCrop(crop, scale, "BILINEAR"),
        RandomBrightnessContrast(brightness, contrast, p=jitter_p),
        RandomBandGreyscale(grey_p),
        K.RandomGaussianBlur(_blur_kernel(crop), sigma=(0.1, 2.0), p=blur_p),
        K.RandomHorizontalFlip(),
        K.RandomVerticalFlip(),
        RandomChannelDrop(p=drop_p),
    ])
