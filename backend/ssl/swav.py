"""SwAV (Caron et al. 2020) on all chosen bands, with the SSL4EO-S12 augmentations.

Encoder + projector (2048 -> 128), 60 prototypes (frozen for the first ``frozen_steps`` steps), swapped prediction
of Sinkhorn-Knopp codes between views (lightly's head, prototypes and loss). Multi-crop as in the paper: two views
at ``crop`` px (scale 0.2-1; their codes are the targets) and ``low_res_crops`` small views at ``crop / 2`` px
(scale 0.05-0.4) that only predict; ``--set low_res_crops=0`` gives plain two-view SwAV.
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
                                "weight_decay": 1e-6, "low_res_crops": 2}

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
        self.n_low = int(cfg["low_res_crops"])
        self.low_crop = max(8, int(cfg["crop"]) // 2)
        self.augment_low = ssl4eo_augment(self.low_crop, scale=(0.05, 0.4))

    def make_views(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(the two high-resolution views stacked along the batch: (2B, C, crop, crop), the low-resolution ones:
        (low_res_crops x B, C, crop/2, crop/2), empty when there are none)."""
        x = self.stacked(batch)
        high = torch.cat([self.augment(x), self.augment(x)])
        if self.n_low == 0:
            return high, x.new_zeros((0, x.shape[1], self.low_crop, self.low_crop))
        return high, torch.cat([self.augment_low(x) for _ in range(self.n_low)])

    def _codes(self, v: torch.Tensor, n: int) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """Prototype scores of ``v`` split into ``n`` views, and the first view's projection and features."""
        f = self.encoder(v)
        z = F.normalize(self.projection(f), dim=1)
        p = self.prototypes(z, step=self.global_step)
        return list(p.chunk(n)), z.chunk(n)[0], f.chunk(n)[0]

    def forward_loss(self, high: torch.Tensor, low: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        self.prototypes.normalize()
        p_high, z1, f1 = self._codes(high, 2)
        p_low = self._codes(low, self.n_low)[0] if len(low) else []
        return self.criterion(p_high, p_low), z1, f1

    def describe(self) -> dict[str, Any]:
        c = self.config
        return {"loss": f"swapped prediction, {c['prototypes']} prototypes, temperature {c['temperature']}",
                "views": f"2 x {c['crop']} px + {self.n_low} x {self.low_crop} px (multi-crop)"}
