"""What every image-level SSL method shares: encoder, view making, optimiser and schedule, collapse monitor, export.

A method is a ``LightningModule`` subclass of :class:`SSLMethod` that sets ``name``, ``DEFAULTS`` and implements
:meth:`SSLMethod.build` (heads), :meth:`SSLMethod.make_views` (two views of a batch) and
:meth:`SSLMethod.forward_loss` (loss, the projection to watch for collapse, the encoder features). Batches are
dicts with ``s2`` (B, C_s2, H, W) and, when the data have it, ``s1`` (B, 2, H, W), standardised, as built by
:mod:`backend.data.pretraining`. Augmentations run in ``training_step``, on the batch's device (the GPU when there
is one).

``config`` is a plain dict of JSON-able values (``DEFAULTS`` updated with the user's overrides): it goes into
``checkpoints/run.json`` and ``model.json`` as it is.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn

from backend.models.encoders import create_encoder
from backend.ssl.augmentations import ssl4eo_augment
from backend.ssl.collapse import CollapseMonitor
from backend.task import TrainingTask

#: Options every method understands (with the values a method may override in its ``DEFAULTS``).
COMMON_DEFAULTS: dict[str, Any] = {
    "encoder": "resnet18",
    "batch_size": 128,
    "crop": 64,
    "lr": None,  # absolute learning rate; None: base_lr * batch_size / 256
    "base_lr": 0.06,
    "lr_min": 0.0,
    "weight_decay": 5e-4,
    "sgd_momentum": 0.9,
    "schedule": "warmup-cosine",  # or "cosine-warm-restarts"
    "warmup_fraction": 0.05,  # of all steps, for warmup-cosine
    "restart_epochs": 10,  # T0 of cosine-warm-restarts, in epochs
    "restart_mult": 2,
    "collapse_threshold": 0.1,
}


def learning_rate(cfg: dict[str, Any]) -> float:
    """The learning rate of a method's configuration: ``lr``, else ``base_lr`` scaled by the batch size (/256)."""
    return float(cfg["lr"]) if cfg["lr"] is not None else float(cfg["base_lr"]) * cfg["batch_size"] / 256


class SSLMethod(TrainingTask):
    """Base class of the image-level methods (see the module docstring)."""

    name: ClassVar[str] = ""
    DEFAULTS: ClassVar[dict[str, Any]] = {}
    #: variants the method accepts (None: the method has none)
    VARIANTS: ClassVar[tuple[str, ...] | None] = None
    #: what it pre-trains: an encoder of images (``backend.train.pretrain`` picks the run by it)
    level: ClassVar[str] = "image"

    @classmethod
    def set_keys(cls) -> list[str]:
        """The keys ``--set`` accepts for this method."""
        return list(dict.fromkeys([*COMMON_DEFAULTS, *cls.DEFAULTS]))  # a method's own default of a common key: once

    def __init__(self, config: dict[str, Any]) -> None:
        full = {**COMMON_DEFAULTS, **self.DEFAULTS, **config}
        super().__init__(full)
        self.config: dict[str, Any] = self.hparams  # one object: a later update (pretrain --init) is checkpointed too
        cfg = self.config
        self.sensors: list[str] = list(cfg.get("sensors", ["s2"]))
        self.encoder = self.build_encoder()
        self.feat_dim = int(self.encoder.num_features)
        self.collapse = CollapseMonitor(threshold=float(cfg["collapse_threshold"]))
        #: called with the epoch's collapse numbers when the monitor declares collapse (the command warns)
        self.on_collapse: Callable[[dict[str, float]], None] | None = None
        self.collapsed_epochs: list[int] = []
        affine = cfg.get("input_affine")  # set by ``pretrain --init``: views -> the init package's units
        self.input_affine = bool(affine)
        if affine:
            self.register_buffer("input_scale", torch.tensor(affine["scale"], dtype=torch.float32).view(1, -1, 1, 1),
                                 persistent=False)
            self.register_buffer("input_shift", torch.tensor(affine["shift"], dtype=torch.float32).view(1, -1, 1, 1),
                                 persistent=False)
        self.build()

    # -- to implement --------------------------------------------------------------------------------------
    def build_encoder(self) -> nn.Module:
        """The encoder a package keeps (``encoder.``): a timm backbone of ``config['encoder']`` by default."""
        return create_encoder(self.config["encoder"], self.in_chans())

    def build_augment(self) -> nn.Module:
        """The augmentation of the views (the SSL4EO-S12 ones by default)."""
        return ssl4eo_augment(int(self.config["crop"]))

    def build(self) -> None:
        """Create heads, losses and momentum copies."""
        raise NotImplementedError

    def make_views(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Two augmented views (B, in_chans, crop, crop) of a batch: the encoder's input, augmented twice (the
        image methods'; RS-BYOL, SwAV and dense-moco have their own)."""
        x = self.stacked(batch)
        return self.augment(x), self.augment(x)

    def forward_loss(self, v1: torch.Tensor, v2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(loss, projection of v1 to monitor for collapse, encoder features of v1)."""
        raise NotImplementedError

    # -- what the encoder reads ----------------------------------------------------------------------------
    def in_chans(self) -> int:
        """Channels of the encoder's input: the stacked bands of all sensors used."""
        return sum(len(self.config["bands"][s]) for s in self.sensors)

    def input_spec(self) -> dict[str, Any]:
        """``model.json`` ``input``: channels in order and how they are fed (DESIGN.md)."""
        channels = [[s, b] for s in self.sensors for b in self.config["bands"][s]]
        return {"channels": channels, "channel_mode": "stack", "crop": int(self.config["crop"]),
                "dates": "single", "time_steps": 1}

    @staticmethod
    def needs_s1(config: dict[str, Any]) -> bool:
        return "s1" in config.get("sensors", ["s2"])

    def stacked(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([batch[s] for s in self.sensors], dim=1) if len(self.sensors) > 1 else batch[self.sensors[0]]

    # -- training ------------------------------------------------------------------------------------------
    def encoder_units(self, v: torch.Tensor) -> torch.Tensor:
        """Views as the encoder reads them: augmented standardised bands, then ``config['input_affine']`` when the
        encoder comes from a package with its own normalisation (``pretrain --init``)."""
        if not self.input_affine:
            return v
        return v * self.input_scale.to(v.dtype) + self.input_shift.to(v.dtype)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        v1, v2 = self.make_views(batch)
        v1, v2 = self.encoder_units(v1), self.encoder_units(v2)
        loss, projection, features = self.forward_loss(self.channels_last(v1), self.channels_last(v2))
        self.collapse.update(projection, features)
        return loss

    def epoch_metrics(self) -> dict[str, float]:
        """Merged into the epoch's history row by the runner's EventsCallback (collapse numbers)."""
        stats = self.collapse.compute() or {}
        if stats.get("collapse/collapsed"):
            self.collapsed_epochs.append(int(self.current_epoch))
            if self.on_collapse is not None:
                self.on_collapse(stats)
        return stats

    def learning_rate(self) -> float:
        return learning_rate(self.config)

    def configure_optimizers(self) -> Any:
        cfg = self.config
        lr = self.learning_rate()
        params = [p for p in self.parameters() if p.requires_grad]
        if cfg.get("optimizer", "sgd") == "adamw":  # the series transformers' (backend.ssl.series)
            opt: torch.optim.Optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=cfg["weight_decay"])
        else:
            opt = torch.optim.SGD(params, lr=lr, momentum=cfg["sgd_momentum"], weight_decay=cfg["weight_decay"])
        total = self.total_steps
        if cfg["schedule"] == "warmup-cosine":
            return self.warmup_cosine(opt, int(round(float(cfg["warmup_fraction"]) * total)),
                                      end_value=float(cfg["lr_min"]) / lr if lr > 0 else 0.0)
        if cfg["schedule"] == "constant":
            return opt
        if cfg["schedule"] != "cosine-warm-restarts":
            raise ValueError(f"unknown schedule {cfg['schedule']!r}")
        per_epoch = self.trainer.num_training_batches if self._trainer is not None else total
        per_epoch = int(per_epoch) if math.isfinite(per_epoch) and per_epoch > 0 else max(total, 1)
        sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
            opt, T_0=max(1, int(cfg["restart_epochs"]) * per_epoch), T_mult=int(cfg["restart_mult"]),
            eta_min=float(cfg["lr_min"]))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # -- export --------------------------------------------------------------------------------------------
    def encoder_state_dict(self) -> dict[str, torch.Tensor]:
        """The encoder's weights with the package prefix ``encoder.`` (heads and momentum copies dropped)."""
        return {f"encoder.{k}": v.detach().cpu() for k, v in self.encoder.state_dict().items()}

    def describe(self) -> dict[str, Any]:
        """Method-specific lines for ``model.json`` ``training``."""
        return {}


def momentum_copy(module: nn.Module) -> nn.Module:
    """A frozen copy of ``module`` for the momentum (EMA) branch."""
    import copy

    from lightly.models.utils import deactivate_requires_grad

    twin = copy.deepcopy(module)
    deactivate_requires_grad(twin)
    return twin
