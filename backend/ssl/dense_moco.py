"""Dense pixel-level MoCo on Sentinel-2 time series (Embedding Earth).

Per sample: two random subsets of its dates (sorted; sample level), two random crops of one read region with
a guaranteed overlap and random flips (batch level crops, per-sample flips), query and momentum key encoders
(a U-Net-3D giving per-pixel features, then a 1x1 conv -> ReLU -> 1x1 conv projection, L2-normalised), and
``positives`` ground pixels per sample in the overlap found by the correspondence module. The loss is the
paper's eq. 1: InfoNCE at temperature 0.1 with the other sampled pixels of the batch and a queue of keys as
negatives; a few keys per sample are queued after the weight update.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field, fields
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from backend.models.unet3d import BACKBONES
from backend.ssl.collapse import CollapseMonitor
from backend.ssl.correspondence import apply_view, gather_pixels, sample_correspondences, sample_view_pair
from backend.ssl.dense_loss import DenseInfoNCELoss
from backend.task import TrainingTask


@dataclass
class DenseMoCoConfig:
    in_channels: int
    backbone: str = "unet3d"
    feature_dim: int = 64
    proj_dim: int = 128
    base_width: int = 32
    depth: int = 3
    crop: int = 32
    min_overlap: float = 0.3
    time_subset: float = 0.5  # fraction of the dates in each view (at least 1)
    time_steps: int = 0  # temporal-stack backbone only: fixed T of each view
    positives: int = 32
    queue_size: int = 67_200
    keys_per_sample: int = 4
    temperature: float = 0.1
    momentum: float = 0.999
    lr: float = 1e-4
    lr_milestones: list[int] = field(default_factory=list)
    weight_decay: float = 1e-4
    sgd_momentum: float = 0.9


def projection_head(feature_dim: int, proj_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(feature_dim, feature_dim, 1), nn.ReLU(inplace=True),
                         nn.Conv2d(feature_dim, proj_dim, 1))


def pick_dates(valid: torch.Tensor, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, T, H, W) validity -> (B, n) sorted date indices, drawn with weight on dates with valid pixels."""
    b, t = valid.shape[:2]
    weight = valid.flatten(2).float().mean(-1) + 1e-3  # nearly-empty (cloudy) dates are rarely drawn
    idx = torch.multinomial(weight.cpu(), n, replacement=n > t, generator=generator)
    return idx.sort(dim=1).values.to(valid.device)


def take_dates(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Select dates per sample: x (B, T, ...) and idx (B, n) -> (B, n, ...)."""
    expand = idx.view(*idx.shape, *([1] * (x.dim() - 2))).expand(-1, -1, *x.shape[2:])
    return x.gather(1, expand)


class DenseMoCo(TrainingTask):
    """The whole method as a LightningModule; ``backbone`` is what a model package keeps (prefix ``temporal.``)."""

    name: ClassVar[str] = "dense-moco"
    VARIANTS: ClassVar[tuple[str, ...] | None] = None
    #: per-pixel features over time series (``backend.train.pretrain_dense`` runs it)
    level: ClassVar[str] = "pixel"

    @classmethod
    def set_keys(cls) -> list[str]:
        """The keys ``--set`` accepts: :class:`DenseMoCoConfig`'s fields (the channels come from the data)."""
        return sorted(f.name for f in fields(DenseMoCoConfig) if f.name != "in_channels")

    def __init__(self, config: DenseMoCoConfig) -> None:
        super().__init__(asdict(config))
        self.config = config
        kwargs = {"out_channels": config.feature_dim, "base": config.base_width, "depth": config.depth}
        if config.backbone == "temporal-stack-unet":
            kwargs["time_steps"] = config.time_steps
        self.backbone = BACKBONES[config.backbone](config.in_channels, **kwargs)
        self.head = projection_head(config.feature_dim, config.proj_dim)
        self.backbone_k = copy.deepcopy(self.backbone)
        self.head_k = copy.deepcopy(self.head)
        for p in [*self.backbone_k.parameters(), *self.head_k.parameters()]:
            p.requires_grad_(False)
        self.criterion = DenseInfoNCELoss(config.proj_dim, config.queue_size, config.temperature)
        self._pending_keys: torch.Tensor | None = None
        self.collapse = CollapseMonitor()
        #: seconds summed over the steps: making the views + correspondences, the enqueue, and the whole step from the
        #: start of ``training_step`` to the end of the update and enqueue (data loading and copies excluded)
        self.timing = {"views_s": 0.0, "queue_s": 0.0, "step_s": 0.0, "steps": 0}
        self._step_t0: float | None = None

    def n_dates(self, t: int) -> int:
        if self.config.backbone == "temporal-stack-unet":
            return self.config.time_steps
        return max(1, min(t, round(t * self.config.time_subset)))

    @torch.no_grad()
    def _momentum_update(self) -> None:
        m = self.config.momentum
        for q, k in zip([*self.backbone.parameters(), *self.head.parameters()],
                        [*self.backbone_k.parameters(), *self.head_k.parameters()], strict=True):
            k.mul_(m).add_(q.detach(), alpha=1 - m)
        for q, k in zip([*self.backbone.buffers(), *self.head.buffers()],
                        [*self.backbone_k.buffers(), *self.head_k.buffers()], strict=True):
            k.copy_(q)

    def embed(self, x: torch.Tensor, doy: torch.Tensor | None = None) -> torch.Tensor:
        """Per-pixel features (B, F, H, W) of the query backbone: what downstream models start from."""
        return self.backbone(x, doy)

    def make_views(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Two date subsets and two crops per sample, and the pixel correspondences between them."""
        x, valid, doy = batch["s2"], batch["s2_valid"], batch["s2_doy"]
        b, t, _, region, _ = x.shape
        n = self.n_dates(t)
        ta, tb = pick_dates(valid, n), pick_dates(valid, n)
        xa, xb = take_dates(x, ta), take_dates(x, tb)
        a, v = sample_view_pair(b, region, self.config.crop, self.config.min_overlap)
        ia, ja, ib, jb = sample_correspondences(a, v, self.config.positives)
        return {"xa": apply_view(xa, a), "xb": apply_view(xb, v), "doy_a": take_dates(doy, ta),
                "doy_b": take_dates(doy, tb), "ia": ia, "ja": ja, "ib": ib, "jb": jb}

    @torch.no_grad()
    def probe_loss(self, batch: dict[str, torch.Tensor], seed: int = 0) -> float:
        """In-batch InfoNCE (no queue) on views fixed by ``seed``: comparable across training, unlike the
        training loss, which grows with the queue (more negatives) while the queue fills."""
        state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        try:
            views = self.make_views(batch)
        finally:
            torch.random.set_rng_state(state)
        q = gather_pixels(F.normalize(self.head(self.backbone(views["xa"], views["doy_a"])), dim=1),
                          views["ia"], views["ja"]).flatten(0, 1)
        k = gather_pixels(F.normalize(self.head_k(self.backbone_k(views["xb"], views["doy_b"])), dim=1),
                          views["ib"], views["jb"]).flatten(0, 1)
        logits = q @ k.T / self.config.temperature
        return float(F.cross_entropy(logits, torch.arange(len(q), device=q.device)))

    def _clock(self) -> float:
        """Wall time for ``timing``; on CUDA after a synchronisation, or queued kernels would be counted where they
        finish instead of where they were launched (the few syncs per step cost little next to the U-Net)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        t0 = self._clock()
        views = self.make_views(batch)
        t1 = self._clock()
        features = self.backbone(views["xa"], views["doy_a"])
        q_map = F.normalize(self.head(features), dim=1)
        with torch.no_grad():
            self._momentum_update()
            k_map = F.normalize(self.head_k(self.backbone_k(views["xb"], views["doy_b"])), dim=1)
        q = gather_pixels(q_map, views["ia"], views["ja"])  # (B, N, D)
        k = gather_pixels(k_map, views["ib"], views["jb"])
        loss = self.criterion(q.flatten(0, 1), k.flatten(0, 1))
        keys = k[:, : self.config.keys_per_sample].flatten(0, 1)
        self._pending_keys = self.all_gather(keys).flatten(0, -2) if self.trainer.world_size > 1 else keys
        self.timing["views_s"] += t1 - t0
        self.timing["steps"] += 1
        self._step_t0 = t0  # the step ends in optimizer_step, after the backward pass, the update and the enqueue
        pixel_features = gather_pixels(features.detach(), views["ia"], views["ja"]).flatten(0, 1)
        self.collapse.update(q.detach().flatten(0, 1), pixel_features)
        return loss

    def optimizer_step(self, epoch: int, batch_idx: int, optimizer: object, optimizer_closure: object = None) -> None:
        """The weight update (the closure runs ``training_step``), then the enqueue of this step's keys, as in the
        paper: the queue holds keys of past steps only. Here rather than in ``on_train_batch_end`` so that the keys
        are in the queue before any callback (the checkpoint one) sees the step as done: a resumed run goes on with
        exactly the queue it would have had."""
        optimizer.step(closure=optimizer_closure)  # type: ignore[attr-defined]
        if self._pending_keys is not None:
            t0 = self._clock()
            self.criterion.enqueue(self._pending_keys)
            self._pending_keys = None
            self.timing["queue_s"] += self._clock() - t0
        if self._step_t0 is not None:
            self.timing["step_s"] += self._clock() - self._step_t0
            self._step_t0 = None

    def epoch_metrics(self) -> dict[str, float]:
        """``collapse/*`` numbers of the epoch's last sampled pixels (merged into the runner's history)."""
        return self.collapse.compute() or {}

    def configure_optimizers(self):  # noqa: ANN201
        c = self.config
        params = [*self.backbone.parameters(), *self.head.parameters()]
        opt = torch.optim.SGD(params, lr=c.lr, momentum=c.sgd_momentum, weight_decay=c.weight_decay)
        if not c.lr_milestones:
            return opt
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=c.lr_milestones, gamma=0.1)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
