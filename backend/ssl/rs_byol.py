"""RS-BYOL (Jain, Schoen-Phelan & Ross, IEEE JSTARS 2022): BYOL whose two views are different *sensors or bands*
of the same place, so the encoder learns features invariant to the spectral/SAR appearance.

Variants (``variant``), drawn per sample:

- ``single``: view 1 = one random Sentinel-2 band of the paper's ten 10/20 m bands (B02-B08, B8A, B11, B12),
  view 2 = one random Sentinel-1 polarisation (VV or VH). A 1-channel encoder; at inference every band goes through
  it on its own and the features are averaged (``channel_mode: per-band``).
- ``three``: view 1 = three distinct random S2 bands (of the ten), view 2 = VV, VH and a random copy of one of them.
  A 3-channel encoder (its package reads RGB: B04, B03, B02).
- ``s2-only``: the paper's multispectral-only ablation: two distinct random S2 bands, no S1. 1-channel, per-band.
- ``rgb-s1s2``: view 1 = RGB (B04, B03, B02), view 2 = one random S1 polarisation and two distinct random non-RGB
  bands of the ten (three channels, like view 1). A 3-channel encoder reading RGB.

Then each view gets its own augmentations: random resized crop (bicubic), flips, rotation, Gaussian blur, random
erasing and random greyscale for 3-channel views; no colour jitter. Defaults as the paper: projector and
predictor 2-layer MLPs (hidden 256, BN, ReLU), EMA teacher with decay 0.9, symmetric loss on L2-normalised outputs
(normalised MSE), SGD with cosine annealing and warm restarts (T0 = 10 epochs, x2, lr 0.2 down to 0.002), weight
decay 1e-5, batch 32. The encoder is a ResNet as in the paper, but a ResNet-18 (every method's default) rather than
its ResNet-50: the few-label path, the demo and the QGIS plugin pre-train on one scene, on a CPU or one GPU
(``--encoder resnet50`` for the paper's). All overridable.
"""

from __future__ import annotations

from typing import Any

import torch

from backend.data.bands import S1_BANDS
from backend.errors import EoSslError
from backend.ssl.augmentations import rs_byol_augment
from backend.ssl.byol import BYOL

#: the paper's single-channel pool: the ten Sentinel-2 bands at 10 and 20 m
S2_POOL: tuple[str, ...] = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")
RGB: tuple[str, ...] = ("B04", "B03", "B02")
VARIANTS: tuple[str, ...] = ("single", "three", "s2-only", "rgb-s1s2")


def draw(pool: torch.Tensor, batch: int, k: int) -> torch.Tensor:
    """(batch, k) distinct entries of ``pool`` per row, uniformly at random (global torch RNG)."""
    order = torch.rand(batch, len(pool), device=pool.device).argsort(dim=1)[:, :k]
    return pool[order]


def take(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Per-sample channel selection: x (B, C, H, W), idx (B, k) -> (B, k, H, W)."""
    return x.gather(1, idx[:, :, None, None].expand(-1, -1, *x.shape[2:]))


class RSBYOL(BYOL):
    name = "rs-byol"
    VARIANTS = VARIANTS
    DEFAULTS: dict[str, Any] = {
        "variant": "single", "batch_size": 32, "proj_hidden": 256, "proj_dim": 128,
        "momentum": 0.9, "momentum_schedule": False, "lr": 0.2, "lr_min": 0.002, "schedule": "cosine-warm-restarts",
        "restart_epochs": 10, "restart_mult": 2, "weight_decay": 1e-5,
        "aug_scale": [0.2, 1.0], "aug_rotation": 90.0, "aug_blur_p": 0.5, "aug_erase_p": 0.25, "aug_grey_p": 0.2,
    }

    def __init__(self, config: dict[str, Any]) -> None:
        variant = config.get("variant") or self.DEFAULTS["variant"]
        if variant not in VARIANTS:
            raise EoSslError("bad_argument", f"Unknown rs-byol variant {variant!r}.",
                             f"Use one of: {', '.join(VARIANTS)}.")
        super().__init__({**config, "variant": variant})

    # -- bands ---------------------------------------------------------------------------------------------
    @staticmethod
    def needs_s1(config: dict[str, Any]) -> bool:
        return (config.get("variant") or "single") != "s2-only"

    @staticmethod
    def required_s2(variant: str) -> tuple[str, ...]:
        return RGB if variant == "rgb-s1s2" else ()

    def in_chans(self) -> int:
        return 1 if self.config["variant"] in ("single", "s2-only") else 3

    def build(self) -> None:
        super().build()
        cfg = self.config
        s2 = list(cfg["bands"]["s2"])
        pool = [s2.index(b) for b in S2_POOL if b in s2]
        if len(pool) < 3:
            raise EoSslError("missing_bands", f"rs-byol needs the 10/20 m Sentinel-2 bands ({', '.join(S2_POOL)}); "
                             f"the data have {', '.join(s2)}.", "Prepare the store with all Sentinel-2 bands.")
        self.register_buffer("s2_pool", torch.tensor(pool), persistent=False)
        if cfg["variant"] == "rgb-s1s2":
            missing = [b for b in RGB if b not in s2]
            if missing:
                raise EoSslError("missing_bands", f"rs-byol rgb-s1s2 needs {', '.join(missing)}.",
                                 "Prepare the store with B02, B03 and B04.")
            self.register_buffer("rgb_idx", torch.tensor([s2.index(b) for b in RGB]), persistent=False)
            self.register_buffer("non_rgb_pool", torch.tensor([i for i in pool if s2[i] not in RGB]),
                                 persistent=False)
        if self.needs_s1(cfg):
            s1 = list(cfg["bands"].get("s1", []))
            if any(p not in s1 for p in S1_BANDS):
                raise EoSslError("missing_bands", f"rs-byol {cfg['variant']} needs Sentinel-1 VV and VH.",
                                 "Prepare the store with --s1, or use --variant s2-only.")
            self.register_buffer("s1_pool", torch.tensor([s1.index(p) for p in S1_BANDS]), persistent=False)

    def build_augment(self) -> torch.nn.Module:
        c = self.config
        return rs_byol_augment(int(c["crop"]), scale=tuple(c["aug_scale"]), rotation=float(c["aug_rotation"]),
                               blur_p=float(c["aug_blur_p"]), erase_p=float(c["aug_erase_p"]),
                               grey_p=float(c["aug_grey_p"]))

    def input_spec(self) -> dict[str, Any]:
        variant = self.config["variant"]
        s2 = list(self.config["bands"]["s2"])
        if variant in ("single", "s2-only"):
            channels, mode = [["s2", b] for b in S2_POOL if b in s2], "per-band"
        else:
            channels, mode = [["s2", b] for b in RGB], "stack"
        return {"channels": channels, "channel_mode": mode, "crop": int(self.config["crop"]), "dates": "single",
                "time_steps": 1}

    # -- views ---------------------------------------------------------------------------------------------
    def band_views(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
        """The two views before augmentation, and what was drawn (channel indices into ``s2``/``s1``)."""
        s2 = batch["s2"]
        b = s2.shape[0]
        variant = self.config["variant"]
        info: dict[str, Any] = {"variant": variant}
        if variant == "single":
            i2, i1 = draw(self.s2_pool, b, 1), draw(self.s1_pool, b, 1)
            v1, v2 = take(s2, i2), take(batch["s1"], i1)
            info.update(view1=[("s2", i2)], view2=[("s1", i1)])
        elif variant == "three":
            i2 = draw(self.s2_pool, b, 3)
            copy = draw(self.s1_pool, b, 1)
            both = self.s1_pool.expand(b, -1)
            i1 = torch.cat([both, copy], dim=1)
            v1, v2 = take(s2, i2), take(batch["s1"], i1)
            info.update(view1=[("s2", i2)], view2=[("s1", i1)])
        elif variant == "s2-only":
            pair = draw(self.s2_pool, b, 2)
            v1, v2 = take(s2, pair[:, :1]), take(s2, pair[:, 1:])
            info.update(view1=[("s2", pair[:, :1])], view2=[("s2", pair[:, 1:])])
        else:  # rgb-s1s2
            rgb = self.rgb_idx.expand(b, -1)
            pol, extra = draw(self.s1_pool, b, 1), draw(self.non_rgb_pool, b, 2)
            v1 = take(s2, rgb)
            v2 = torch.cat([take(batch["s1"], pol), take(s2, extra)], dim=1)
            info.update(view1=[("s2", rgb)], view2=[("s1", pol), ("s2", extra)])
        return v1, v2, info

    def make_views(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        v1, v2, _ = self.band_views(batch)
        return self.augment(v1), self.augment(v2)

    def describe(self) -> dict[str, Any]:
        pool = [self.config["bands"]["s2"][int(i)] for i in self.s2_pool]
        views = {"single": "one random S2 band of the pool vs one random S1 polarisation",
                 "three": "three random S2 bands of the pool vs VV, VH + a random copy of one of them",
                 "s2-only": "two distinct random S2 bands of the pool (no S1)",
                 "rgb-s1s2": "RGB (B04, B03, B02) vs one random S1 polarisation + two random non-RGB bands of the pool"}
        return {"loss": "symmetric normalised MSE (2 - 2 cos)", "ema": f"fixed decay {self.config['momentum']}",
                "views": views[self.config["variant"]], "s2_band_pool": pool}
