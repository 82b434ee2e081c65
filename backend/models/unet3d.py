"""Per-pixel encoders for Sentinel-2 time series (Embedding Earth's backbone and a cheaper variant).

Input ``x`` is (B, T, C, H, W); the output is (B, F, H, W) per-pixel features. :class:`UNet3D` convolves over
time and space (3x3x3) and pools space only, so the time axis keeps its length until a learned temporal
pooling at the end; :class:`TemporalStackUNet` folds time into channels and runs a 2D U-Net (cheaper, fixed T).
Both take an optional day-of-year (B, T) that is appended as two channels (sin, cos), as the paper feeds the
acquisition date.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from backend.models.state_dicts import LoadReport, load_exactly, load_matching


def doy_channels(doy: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B, T) day of year -> (B, T, 2, H, W) sin/cos channels shaped like ``like`` (B, T, C, H, W)."""
    angle = 2 * math.pi * doy.to(like.dtype) / 365.25
    enc = torch.stack([torch.sin(angle), torch.cos(angle)], dim=2)  # (B, T, 2)
    return enc[..., None, None].expand(-1, -1, -1, like.shape[-2], like.shape[-1])


def _with_doy(x: torch.Tensor, doy: torch.Tensor | None) -> torch.Tensor:
    """(B, T, C, H, W) -> (B, T, C + 2, H, W): the day of year (0 where not given) appended as sin/cos channels."""
    doy = doy if doy is not None else torch.zeros(x.shape[:2], device=x.device)
    return torch.cat([x, doy_channels(doy, x)], dim=2)


def _unet_layers(cin: int, base: int, depth: int, block: Callable[[int, int], nn.Module],
                 conv: Callable[..., nn.Module]) -> tuple[nn.ModuleList, nn.ModuleList, nn.ModuleList, int]:
    """The (down, reduce, up) blocks of a U-Net of ``depth`` levels of width ``base * 2**i`` (2D or 3D by ``block``
    and ``conv``) from ``cin`` channels, built in this order (so a seed draws the same weights), and the output
    width."""
    widths = [base * 2**i for i in range(depth + 1)]
    down = nn.ModuleList()
    for w in widths:
        down.append(block(cin, w))
        cin = w
    reduce, up = nn.ModuleList(), nn.ModuleList()
    for w in reversed(widths[:-1]):
        reduce.append(conv(cin, w, 1))
        up.append(block(2 * w, w))
        cin = w
    return down, reduce, up, cin


def _unet_pass(h: torch.Tensor, net: nn.Module, pool: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Down through ``net.down`` (pooled with ``pool`` after each but the last level), up through ``net.reduce`` /
    ``net.up`` with the skips."""
    skips = []
    for i, block in enumerate(net.down):
        h = block(h)
        if i < net.depth:
            skips.append(h)
            h = pool(h)
    for reduce, block, skip in zip(net.reduce, net.up, reversed(skips), strict=True):
        h = F.interpolate(reduce(h), size=skip.shape[2:], mode="nearest")
        h = block(torch.cat([h, skip], dim=1))
    return h


class _Block3d(nn.Sequential):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(
            nn.Conv3d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm3d(cout), nn.ReLU(inplace=True),
            nn.Conv3d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm3d(cout), nn.ReLU(inplace=True))


class UNet3D(nn.Module):
    """A 3D U-Net over (T, H, W) with spatial-only down/up-sampling and attention-free temporal pooling.

    ``out_channels`` is the per-pixel feature size. H and W must be divisible by ``2 ** depth``.
    """

    def __init__(self, in_channels: int, out_channels: int = 64, base: int = 32, depth: int = 3,
                 use_doy: bool = True) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.depth, self.use_doy = in_channels, out_channels, depth, use_doy
        self.base = base
        down, reduce, up, cin = _unet_layers(in_channels + (2 if use_doy else 0), base, depth, _Block3d, nn.Conv3d)
        self.down, self.up, self.reduce = down, up, reduce
        # temporal pooling: softmax attention weights over T per pixel (works for any T)
        self.time_score = nn.Conv3d(cin, 1, 1)
        self.head = nn.Conv2d(cin, out_channels, 1)

    def forward(self, x: torch.Tensor, doy: torch.Tensor | None = None) -> torch.Tensor:
        x = _with_doy(x, doy) if self.use_doy else x
        h = _unet_pass(x.permute(0, 2, 1, 3, 4), self, lambda h: F.max_pool3d(h, (1, 2, 2)))  # (B, C, T, H, W)
        weights = torch.softmax(self.time_score(h), dim=2)  # (B, 1, T, H, W)
        pooled = (h * weights).sum(dim=2)  # (B, C, H, W)
        return self.head(pooled)


class TemporalStackUNet(nn.Module):
    """A 2D U-Net on the time series folded into channels (T x C): cheaper, but T is fixed at construction."""

    def __init__(self, in_channels: int, time_steps: int, out_channels: int = 64, base: int = 32,
                 depth: int = 3, use_doy: bool = True) -> None:
        super().__init__()
        self.time_steps, self.use_doy = time_steps, use_doy
        self.in_channels, self.out_channels, self.depth, self.base = in_channels, out_channels, depth, base
        down, reduce, up, cin = _unet_layers(time_steps * (in_channels + (2 if use_doy else 0)), base, depth,
                                             _block2d, nn.Conv2d)
        self.down, self.reduce, self.up = down, reduce, up
        self.head = nn.Conv2d(cin, out_channels, 1)

    def forward(self, x: torch.Tensor, doy: torch.Tensor | None = None) -> torch.Tensor:
        if x.shape[1] != self.time_steps:
            raise ValueError(f"TemporalStackUNet was built for T={self.time_steps}, got T={x.shape[1]}")
        x = _with_doy(x, doy) if self.use_doy else x
        return self.head(_unet_pass(x.flatten(1, 2), self, lambda h: F.max_pool2d(h, 2)))


def _block2d(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


BACKBONES = {"unet3d": UNet3D, "temporal-stack-unet": TemporalStackUNet}


class TemporalSegmenter(nn.Module):
    """A per-pixel backbone (pre-trained by dense-moco, or random) + a 1x1 conv classifier: (B, T, C, H, W) or
    (B, C, H, W) -> (B, K, H, W) logits. The projection head of pre-training is not part of it (the paper drops it).

    It has the interface of :class:`backend.models.segmentation.SegmentationNet` (``encoder_module``,
    ``load_encoder``, ``package_state_dict``, ``load_package_state_dict``, ``describe``), so fine-tuning and
    prediction treat both alike. Package keys: ``temporal.*`` (backbone) and ``head.*``.
    """

    def __init__(self, backbone: nn.Module, num_classes: int, backbone_name: str = "unet3d") -> None:
        super().__init__()
        self.temporal = backbone
        self.head = nn.Conv2d(backbone.out_channels, num_classes, 1)
        self.backbone_name, self.num_classes = backbone_name, num_classes

    @classmethod
    def from_architecture(cls, arch: dict, in_chans: int, num_classes: int) -> TemporalSegmenter:
        """Built from ``model.json`` ``architecture`` (as written by dense-moco or by fine-tuning)."""
        name = arch.get("backbone", "unet3d")
        kwargs = {"out_channels": int(arch.get("out_channels", 64)), "base": int(arch.get("base", 32)),
                  "depth": int(arch.get("depth", 3))}
        if name == "temporal-stack-unet":
            kwargs["time_steps"] = int(arch.get("time_steps") or 1)
        return cls(build_backbone(name, in_chans, **kwargs), num_classes, name)

    def forward(self, x: torch.Tensor, doy: torch.Tensor | None = None) -> torch.Tensor:
        if x.dim() == 4:  # (B, C, H, W): a single date
            x = x[:, None]
        return self.head(self.temporal(x, doy))

    @property
    def encoder_module(self) -> nn.Module:
        return self.temporal

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.temporal(x[:, None] if x.dim() == 4 else x)

    def load_encoder(self, state: dict[str, torch.Tensor]) -> LoadReport:
        """Load backbone weights (keys without the ``temporal.`` prefix); every tensor must fit."""
        return load_matching(self.temporal, state, needs="this model", what="Backbone weight",
                             hint="The package was made for other bands.")

    def package_state_dict(self) -> dict[str, torch.Tensor]:
        out = {f"temporal.{k}": v for k, v in self.temporal.state_dict().items()}
        out.update({f"head.{k}": v for k, v in self.head.state_dict().items()})
        return out

    def load_package_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        load_exactly(self, state, "corrupt_model", "The package's weights do not fit its architecture",
                     "Use another copy of the model.")

    def describe(self) -> dict:
        t = self.temporal
        return {"family": "unet3d", "backbone": self.backbone_name, "encoder": self.backbone_name,
                "in_chans": t.in_channels, "out_channels": t.out_channels, "base": t.base, "depth": t.depth,
                "time_steps": getattr(t, "time_steps", None), "decoder": "1x1", "num_classes": self.num_classes}


def build_backbone(name: str, in_channels: int, **kwargs: int) -> nn.Module:
    """A per-pixel backbone by name (``unet3d`` or ``temporal-stack-unet``; the latter needs ``time_steps``)."""
    if name not in BACKBONES:
        from backend.errors import EoSslError

        raise EoSslError("unknown_backbone", f"Unknown temporal backbone {name!r}.",
                         f"Use one of {', '.join(BACKBONES)}.")
    return BACKBONES[name](in_channels, **kwargs)
