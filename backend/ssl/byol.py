"""BYOL (Grill et al. 2020) on all chosen bands, with the SSL4EO-S12 augmentations.

Online encoder + projector + predictor, momentum (EMA) target encoder + projector, symmetric normalised-MSE loss
(``2 - 2 cos``). Heads, loss and momentum update are lightly's; the EMA rate follows lightly's cosine schedule from
``momentum`` to 1 over the run.
"""

from __future__ import annotations

from typing import Any

import torch
from lightly.loss import NegativeCosineSimilarity
from lightly.models.modules import BYOLPredictionHead, BYOLProjectionHead
from lightly.models.utils import update_momentum
from lightly.utils.scheduler import cosine_schedule

from backend.ssl.base import SSLMethod, momentum_copy


class BYOL(SSLMethod):
    name = "byol"
    DEFAULTS: dict[str, Any] = {"proj_hidden": 4096, "proj_dim": 256, "momentum": 0.99, "momentum_schedule": True,
                                "base_lr": 0.06, "weight_decay": 5e-4}

    def build(self) -> None:
        cfg = self.config
        self.projection = BYOLProjectionHead(self.feat_dim, cfg["proj_hidden"], cfg["proj_dim"])
        self.prediction = BYOLPredictionHead(cfg["proj_dim"], cfg["proj_hidden"], cfg["proj_dim"])
        self.encoder_momentum = momentum_copy(self.encoder)
        self.projection_momentum = momentum_copy(self.projection)
        self.criterion = NegativeCosineSimilarity()
        self.augment = self.build_augment()

    def ema_rate(self) -> float:
        m = float(self.config["momentum"])
        if not self.config["momentum_schedule"]:
            return m
        return float(cosine_schedule(self.global_step, max(self.total_steps, 1), m, 1.0))

    def update_teacher(self) -> None:
        m = self.ema_rate()
        update_momentum(self.encoder, self.encoder_momentum, m)
        update_momentum(self.projection, self.projection_momentum, m)

    def nmse(self, p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Normalised MSE ``||p/|p| - z/|z|||^2 = 2 - 2 cos(p, z)``, averaged over the batch."""
        return 2 + 2 * self.criterion(p, z)

    def forward_loss(self, v1: torch.Tensor, v2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        self.update_teacher()
        f1, f2 = self.encoder(v1), self.encoder(v2)
        z1, z2 = self.projection(f1), self.projection(f2)
        p1, p2 = self.prediction(z1), self.prediction(z2)
        with torch.no_grad():
            t1 = self.projection_momentum(self.encoder_momentum(v1))
            t2 = self.projection_momentum(self.encoder_momentum(v2))
        loss = 0.5 * (self.nmse(p1, t2) + self.nmse(p2, t1))
        return loss, z1, f1

    def describe(self) -> dict[str, Any]:
        return {"loss": "symmetric normalised MSE (2 - 2 cos)", "ema": "cosine from momentum to 1"
                if self.config["momentum_schedule"] else f"fixed {self.config['momentum']}"}
