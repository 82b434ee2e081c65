"""SwAV (Caron et al. 2020) on all chosen bands, with the SSL4EO-S12 augmentations.

Encoder + projector (2048 -> 128), 60 prototypes (frozen for the first ``frozen_steps`` steps), swapped prediction
of Sinkhorn-Knopp codes between two views (lightly's head, prototypes and loss). Two crops of the same size: no
multi-crop (the crops here are already small).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from lightly.loss import SwaVLoss
from lightly.models.modules import SwaVProjectionHead, SwaVPrototypes

from backend.ssl.augmentations import ssl4eo_augment
from backend.ssl.base import SSLMethod


class SwAV(SSLMethod):
    name = "swav"
    DEFAULTS: dict[str, Any] = {"proj_hidden": 2048, "proj_dim": 128, "prototypes": 60, "frozen_steps": 100,
                                "temperature": 0.1, "sinkhorn_iterations": 3, "base_lr": 0.06,
                                "weight_decay": 1e-6}

    def build(self) -> None:
        cfg = self.config
        self.projection = SwaVProjectionHead(self.feat_dim, cfg["proj_hidden"], cfg["proj_dim"])
        self.prototypes = SwaVPrototypes(cfg["proj_dim"], int(cfg["prototypes"]),
                                         n_steps_frozen_prototypes=int(cfg["frozen_steps"]))
        distributed = int(cfg.get("world_size", 1)) > 1
        self.criterion = SwaVLoss(temperature=float(cfg["temperature"]),
                                  sinkhorn_iterations=int(cfg["sinkhorn_iterations"]),
                                  sinkhorn_gather_distributed=distributed)
        self.augment = ssl4eo_augment(int(cfg["crop"]))

    def make_views(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.stacked(batch)
        return self.augment(x), self.augment(x)

    def forward_loss(self, v1: torch.Tensor, v2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        self.prototypes.normalize()
        f1, f2 = self.encoder(v1), self.encoder(v2)
        z1 = F.normalize(self.projection(f1), dim=1)
        z2 = F.normalize(self.projection(f2), dim=1)
        p1 = self.prototypes(z1, step=self.global_step)
        p2 = self.prototypes(z2, step=self.global_step)
        return self.criterion([p1, p2], []), z1, f1

    def describe(self) -> dict[str, Any]:
        c = self.config
        return {"loss": f"swapped prediction, {c['prototypes']} prototypes, temperature {c['temperature']}"}
