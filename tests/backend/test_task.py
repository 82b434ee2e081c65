"""The training template (:mod:`backend.task`): every LightningModule of eo-ssl derives from it, its configuration
travels in the checkpoint as hyper-parameters, and the warm-up + cosine schedule is lightly's, step for step."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from lightly.utils.scheduler import CosineWarmupScheduler
from torch import nn

from backend.ssl.registry import METHODS
from backend.task import TrainingTask
from backend.train.finetune import FinetuneModule


def test_every_training_module_is_a_task() -> None:
    assert all(issubclass(cls, TrainingTask) for cls in METHODS.values()), [
        n for n, c in METHODS.items() if not issubclass(c, TrainingTask)]
    assert issubclass(FinetuneModule, TrainingTask)


class _Tiny(TrainingTask):
    UNKNOWN_STEPS = 40

    def __init__(self, warmup: int) -> None:
        super().__init__({"warmup": warmup, "lr": 0.1, "note": "saved"})
        self.lin = nn.Linear(2, 1)

    def configure_optimizers(self):  # noqa: ANN201
        return self.warmup_cosine(torch.optim.SGD(self.parameters(), lr=self.hparams["lr"]), self.hparams["warmup"],
                                  end_value=0.01)


def test_hyper_parameters_and_the_schedule() -> None:
    torch.manual_seed(0)
    task = _Tiny(warmup=5)
    assert dict(task.hparams) == {"warmup": 5, "lr": 0.1, "note": "saved"}
    assert task.total_steps == 40  # no trainer: the task's own fallback
    conf = task.configure_optimizers()
    ours, opt = conf["lr_scheduler"]["scheduler"], conf["optimizer"]
    ref_opt = torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=0.1)
    ref = CosineWarmupScheduler(ref_opt, warmup_epochs=5, max_epochs=40, end_value=0.01)
    assert conf["lr_scheduler"]["interval"] == "step"
    for _ in range(40):
        assert opt.param_groups[0]["lr"] == pytest.approx(ref_opt.param_groups[0]["lr"])
        opt.step()
        ref_opt.step()
        ours.step()
        ref.step()


def test_a_checkpoint_carries_the_configuration(tmp_path) -> None:
    class _Fit(_Tiny):
        def training_step(self, batch, batch_idx):  # noqa: ANN001, ANN201
            return self.lin(batch).pow(2).mean()

    task = _Fit(warmup=1)
    trainer = pl.Trainer(max_steps=2, accelerator="cpu", logger=False, enable_progress_bar=False,
                         enable_checkpointing=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(task, torch.utils.data.DataLoader(torch.randn(8, 2), batch_size=4))
    assert task.total_steps == 2  # counted by Lightning now
    trainer.save_checkpoint(tmp_path / "last.ckpt")
    ckpt = torch.load(tmp_path / "last.ckpt", weights_only=True)
    assert ckpt["hyper_parameters"] == {"warmup": 1, "lr": 0.1, "note": "saved"}
