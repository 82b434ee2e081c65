"""Barlow Twins (Zbontar et al. 2021) on all chosen bands, with the SSL4EO-S12 augmentations.

Encoder + 3-layer projector (2048, BN, ReLU), cross-correlation loss with redundancy weight 5e-3 (lightly's head and
loss; the cross-correlation is gathered over DDP ranks when there are several).
"""

from __future__ import annotations

from typing import Any

import torch
from lightly.loss import BarlowTwinsLoss
from lightly.models.modules import BarlowTwinsProjectionHead

from backend.ssl.base import SSLMethod


class BarlowTwins(SSLMethod):
    name = "barlow-twins"
    DEFAULTS: dict[str, Any] = {"proj_hidden": 2048, "proj_dim": 2048, "lambda_param": 5e-3, "base_lr": 0.06,
                                "weight_decay": 1e-5}

    def build(self) -> None:
        cfg = self.config
        self.projection = BarlowTwinsProjectionHead(self.feat_dim, cfg["proj_hidden"], cfg["proj_dim"])
        distributed = torch.distributed.is_available() and int(cfg.get("world_size", 1)) > 1
        self.criterion = BarlowTwinsLoss(lambda_param=float(cfg["lambda_param"]), gather_distributed=distributed)
        self.augment = self.build_augment()

    def forward_loss(self, v1: torch.Tensor, v2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        f1, f2 = self.encoder(v1), self.encoder(v2)
        z1, z2 = self.projection(f1), self.projection(f2)
        return self.criterion(z1, z2), z1, f1

    def describe(self) -> dict[str, Any]:
        return {"loss": f"Barlow Twins cross-correlation, lambda {self.config['lambda_param']}"}
