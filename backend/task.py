"""The template every eo-ssl training task is built on (as torchgeo's ``BaseTask``): the image SSL methods
(:class:`backend.ssl.base.SSLMethod`), dense MoCo (:class:`backend.ssl.dense_moco.DenseMoCo`) and fine-tuning
(:class:`backend.train.finetune.FinetuneModule`).

What they share lives here, once:

- the configuration as Lightning hyper-parameters (``save_hyperparameters``: in every checkpoint, so a
  ``checkpoints/last.ckpt`` says how its run was configured);
- raw batches standardised on the device (:func:`backend.data.datasets.standardize`: batches are read as stored and
  converted where the model runs, the GPU when there is one);
- the input in channels-last memory on CUDA (what cuDNN's convolutions prefer; the CPU path keeps its layout);
- the number of optimiser steps of the run, with a task's own fallback where Lightning cannot tell it;
- the schedule both SSL and fine-tuning use by default: linear warm-up, then cosine (lightly's
  ``CosineWarmupScheduler``), stepped per optimiser step;
- :meth:`epoch_metrics`, the numbers the runner's events callback merges into each epoch's history row.

The training loop itself (devices, precision, progress events, cancellation, checkpoints) is
:mod:`backend.train.runner`'s, one for every task.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import lightning.pytorch as pl
import torch

from backend.data.datasets import standardize


class TrainingTask(pl.LightningModule):
    """Base of every eo-ssl LightningModule (see the module docstring)."""

    #: steps assumed when Lightning cannot count them (an endless loader without ``--max-steps``)
    UNKNOWN_STEPS: ClassVar[int] = 10**9

    def __init__(self, hparams: Mapping[str, Any]) -> None:
        super().__init__()
        self.save_hyperparameters(dict(hparams))

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Batches read as stored (:class:`backend.data.datasets.RawBatch`) are standardised here, on the device; a
        batch already standardised passes as it is."""
        return standardize(batch) if isinstance(batch, dict) else batch

    @staticmethod
    def channels_last(x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if x.is_cuda else x

    @property
    def total_steps(self) -> int:
        """The run's optimiser steps (``UNKNOWN_STEPS`` when there is no trainer yet or it cannot count them)."""
        total = self.trainer.estimated_stepping_batches if self._trainer is not None else math.inf
        return int(total) if math.isfinite(total) and total > 0 else self.UNKNOWN_STEPS

    def warmup_cosine(self, optimizer: torch.optim.Optimizer, warmup_steps: int,
                      end_value: float = 0.0) -> dict[str, Any]:
        """``optimizer`` with a linear warm-up over ``warmup_steps``, then a cosine down to ``end_value`` x its
        learning rate at the run's last step; stepped per optimiser step."""
        from lightly.utils.scheduler import CosineWarmupScheduler

        total = self.total_steps
        sched = CosineWarmupScheduler(optimizer, warmup_epochs=min(warmup_steps, total), max_epochs=max(total, 1),
                                      end_value=end_value)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def epoch_metrics(self) -> dict[str, float]:
        """Numbers merged into the epoch's history row by the runner's events callback (none by default)."""
        return {}
