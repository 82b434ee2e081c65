"""SimSiam (Chen & He 2021) on all chosen bands, with the SSL4EO-S12 augmentations.

Encoder + 3-layer projector (2048) + 2-layer predictor (bottleneck 512), symmetric negative cosine with a stop
gradient on the target branch (lightly's heads and loss). No momentum encoder, no negatives: prone to collapse on
EO data, which is what the collapse monitor is there to catch.
"""

from __future__ import annotations

from typing import Any

import torch
from lightly.loss import NegativeCosineSimilarity
from lightly.models.modules import SimSiamPredictionHead, SimSiamProjectionHead

from backend.ssl.augmentations import ssl4eo_augment
from backend.ssl.base import SSLMethod


class SimSiam(SSLMethod):
    name = "simsiam"
    DEFAULTS: dict[str, Any] = {"proj_dim": 2048, "pred_hidden": 512, "base_lr": 0.05, "weight_decay": 1e-4}

    def build(self) -> None:
        cfg = self.config
        self.projection = SimSiamProjectionHead(self.feat_dim, cfg["proj_dim"], cfg["proj_dim"])
        self.prediction = SimSiamPredictionHead(cfg["proj_dim"], cfg["pred_hidden"], cfg["proj_dim"])
        self.criterion = NegativeCosineSimilarity()
        self.augment = ssl4eo_augment(int(cfg["crop"]))

    def forward_loss(self, v1: torch.Tensor, v2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        f1, f2 = self.encoder(v1), self.encoder(v2)
        z1, z2 = self.projection(f1), self.projection(f2)
        p1, p2 = self.prediction(z1), self.prediction(z2)
        loss = 0.5 * (self.criterion(p1, z2.detach()) + self.criterion(p2, z1.detach()))
        return loss, z1, f1

    def describe(self) -> dict[str, Any]:
        return {"loss": "symmetric negative cosine with stop-gradient"}
