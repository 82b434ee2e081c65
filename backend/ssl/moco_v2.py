"""MoCo v2 (Chen et al. 2020) on all chosen bands, with the SSL4EO-S12 augmentations.

Query encoder + 2-layer MLP head (2048 -> 128), momentum key encoder, InfoNCE at temperature 0.2 against a queue
of 65,536 keys (lightly's ``NTXentLoss`` memory bank, updated after each step with the batch's keys), shuffled BN
for the key encoder (lightly's ``batch_shuffle``).
"""

from __future__ import annotations

from typing import Any

import torch
from lightly.loss import NTXentLoss
from lightly.models.modules import MoCoProjectionHead
from lightly.models.utils import batch_shuffle, batch_unshuffle, update_momentum
from lightly.utils.scheduler import cosine_schedule

from backend.ssl.augmentations import ssl4eo_augment
from backend.ssl.base import SSLMethod, momentum_copy


class MoCoV2(SSLMethod):
    name = "moco-v2"
    DEFAULTS: dict[str, Any] = {"proj_hidden": 2048, "proj_dim": 128, "queue_size": 65_536, "temperature": 0.2,
                                "momentum": 0.99, "momentum_schedule": True, "base_lr": 0.06, "weight_decay": 5e-4}

    def build(self) -> None:
        cfg = self.config
        self.projection = MoCoProjectionHead(self.feat_dim, cfg["proj_hidden"], cfg["proj_dim"])
        self.encoder_momentum = momentum_copy(self.encoder)
        self.projection_momentum = momentum_copy(self.projection)
        # under DDP every rank's keys enter the queue (gathered before the enqueue, as MoCo does across GPUs), so all
        # ranks share one queue of the same negatives
        distributed = torch.distributed.is_available() and int(cfg.get("world_size", 1)) > 1
        self.criterion = NTXentLoss(temperature=cfg["temperature"],
                                    memory_bank_size=(int(cfg["queue_size"]), int(cfg["proj_dim"])),
                                    gather_distributed=distributed)
        self.augment = ssl4eo_augment(int(cfg["crop"]))

    def forward_loss(self, v1: torch.Tensor, v2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cfg = self.config
        m = float(cfg["momentum"])
        if cfg["momentum_schedule"]:
            m = float(cosine_schedule(self.global_step, max(self.total_steps, 1), m, 1.0))
        update_momentum(self.encoder, self.encoder_momentum, m)
        update_momentum(self.projection, self.projection_momentum, m)
        f1 = self.encoder(v1)
        q = self.projection(f1)
        with torch.no_grad():
            v2s, shuffle = batch_shuffle(v2)
            k = batch_unshuffle(self.projection_momentum(self.encoder_momentum(v2s)), shuffle)
        return self.criterion(q, k), q, f1

    # lightly keeps the queue in non-persistent buffers: carry it in the checkpoint, so --resume keeps its negatives
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        bank = self.criterion.memory_bank
        checkpoint["moco_queue"] = {"bank": bank.bank.detach().cpu(), "ptr": bank.bank_ptr.detach().cpu()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint.get("moco_queue")
        bank = self.criterion.memory_bank
        if saved is not None and saved["bank"].shape == bank.bank.shape:
            bank.bank.copy_(saved["bank"])
            bank.bank_ptr.copy_(saved["ptr"])

    def describe(self) -> dict[str, Any]:
        c = self.config
        return {"loss": f"InfoNCE, temperature {c['temperature']}, queue {c['queue_size']} x {c['proj_dim']}"}
