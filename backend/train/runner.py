"""The common Lightning training template of every training command (``pretrain``, ``finetune``...).

A command builds its ``LightningModule`` and ``DataLoader`` and calls :func:`fit`; this module does the rest the
same way for everyone:

- the shared command-line options (declared in :data:`backend.options.TRAINER` -> :class:`TrainConfig`): ``--epochs`` /
  ``--max-steps``, ``--batch-size``, ``--devices auto|cpu|cpu:N|N``, ``--num-nodes``, ``--strategy``,
  ``--precision``, ``--num-workers``, ``--checkpoint-every``, ``--resume``, ``--seed``, ``--threads``;
- the device (:func:`backend.devices.resolve_device`): CUDA when there is one (AMP: bf16-mixed where supported,
  else 16-mixed; pinned memory; Lightning copies batches with ``non_blocking``), the CPU otherwise (32-bit); DDP
  through Lightning for several devices or nodes (gloo on CPU). The choice is said in a ``log`` event;
- progress: ``progress`` events with step/total, epoch, loss, lr, imgs/s and eta (:class:`EventsCallback`), and a
  per-epoch history (loss, lr and whatever the module logs with ``on_epoch=True``) that survives a resume;
- cancellation: ``events.check_cancel`` between steps; a cancelled run saves a resumable checkpoint and stops
  cleanly (raising :class:`backend.events.Cancelled` after the trainer has shut down);
- checkpoints: ``MODEL_DIR/checkpoints/last.ckpt`` every N steps and at the end, written under a temporary name
  and renamed (a kill -9 never leaves a half-written ``last.ckpt``); ``--resume`` continues from it. Checkpoints
  are loaded with ``torch.load(weights_only=True)`` only: a pickle that would run code is refused.

A supervised module works as well as a self-supervised one: anything a module logs with ``self.log(...,
on_epoch=True)`` (e.g. ``val/f1``) lands in the history, and so does the dict returned by its optional
``epoch_metrics()`` method (called once at the end of every training epoch); ``val_dataloaders`` are passed through.

DDP with Lightning's default launcher re-runs the command line for ranks 1..N-1 with ``LOCAL_RANK`` set. Their
stdout would be the parent's JSON-lines channel, so importing this module points a child's stdout at stderr
(:func:`backend.events.ddp_child_stdout_to_stderr`, which the CLI calls before its first event); only global rank 0
reports progress and writes outputs (``FitResult.is_global_zero``).

Over 450 lines on purpose: the one Lightning template of every training command (its config, loaders, callbacks
and ``fit``), imported as one ``runner`` namespace by ``pretrain``, ``finetune``, ``evaluate`` and ``compare``; its
sections share :class:`TrainConfig` and :class:`backend.devices.DeviceChoice`.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch

from backend import output_paths
from backend.devices import DeviceChoice, resolve_device
from backend.events import Cancelled, Events, ddp_child_stdout_to_stderr
from backend.train.model_folder import LAST, checkpoint_dir, checkpoint_step

ddp_child_stdout_to_stderr()  # also called by the CLI before its first event; here for other entry points


def _quiet_lightning() -> None:
    """Keep Lightning's chatter out of stderr (which the CLI shows and QGIS copies into the Processing log): its
    info lines (the GPU/TPU summary, "Tip: ... litlogger", "`Trainer.fit` stopped") and the deprecation warnings
    raised from inside Lightning about torch APIs it uses. The backend reports the device and the end of a run in its
    own events; Lightning's warnings about the run itself (UserWarning) still show."""
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for category in (FutureWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", category=category, module=r"lightning(\.|$)")


_quiet_lightning()


def is_main_process() -> bool:
    """True unless this process is a DDP rank other than 0 (a child started by Lightning, or another node).

    Known before the Trainer exists, from the launcher's environment: commands use it to skip work only rank 0
    does (checking and creating the output folder, writing ``run.json``)."""
    return all(os.environ.get(var, "0") in ("", "0") for var in ("LOCAL_RANK", "NODE_RANK", "RANK", "SLURM_PROCID"))


# -- options ----------------------------------------------------------------------------------------------------
@dataclass
class TrainConfig:
    """The shared training options. ``None`` means "the command's (or the method's) default"."""

    epochs: int | None = None
    max_steps: int | None = None
    batch_size: int | None = None
    devices: str = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "auto"
    num_workers: int | None = None
    checkpoint_every: int = 200
    resume: bool = False
    seed: int = 0
    threads: int | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace, **defaults: Any) -> TrainConfig:
        """Options from parsed arguments; ``defaults`` fill what the user left unset (``None``)."""
        values = {}
        for name in cls.__dataclass_fields__:
            value = getattr(args, name, None)
            if value is None:
                value = defaults.get(name, getattr(cls, name))
            values[name] = value
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def apply_threads(cfg: TrainConfig) -> None:
    """``--threads``: torch's intra-op threads for this process (before any work, so the device line says it)."""
    if cfg.threads:
        torch.set_num_threads(max(1, int(cfg.threads)))


def default_num_workers(cuda: bool) -> int:
    """Enough workers to feed a GPU; on a CPU run, workers compete with the model for the same cores."""
    cores = os.cpu_count() or 1
    return min(8, max(1, cores - 1)) if cuda else min(2, cores // 2)


def loader_workers(dataset: torch.utils.data.Dataset, cfg: TrainConfig, device: DeviceChoice) -> int:
    """DataLoader workers: ``--num-workers``, else the fastest measured (``benchmarks/results/data_loading.md``).
    A dataset that reads whole batches from memory maps (``raw_batches``: a batch of 32 random 64 px crops of 15
    bands in ~1 ms) is read in the main process on a CPU run (workers would only add the transfer between processes
    and take cores from the model) and by workers on a GPU run (the reads then overlap the GPU's step); any other
    dataset by :func:`default_num_workers`."""
    if cfg.num_workers is not None:
        return cfg.num_workers
    if getattr(dataset, "raw_batches", None) is not None and not device.cuda:
        return 0
    return default_num_workers(device.cuda)


def make_loader(dataset: torch.utils.data.Dataset, cfg: TrainConfig, device: DeviceChoice, shuffle: bool = True,
                drop_last: bool = True, batch_size: int | None = None) -> torch.utils.data.DataLoader:
    """The training DataLoader: pinned memory on CUDA, persistent workers, a seeded shuffle, and whole batches read
    as stored when the dataset can (``raw_batches``, :mod:`backend.data.datasets`: the module standardises them on
    its device, in ``on_after_batch_transfer``).

    Under DDP Lightning swaps the sampler for a ``DistributedSampler`` (each rank sees its share per epoch).
    """
    from backend.data.datasets import collate

    workers = loader_workers(dataset, cfg, device)
    if getattr(dataset, "raw_batches", None) is not None:
        dataset.raw_batches = True  # type: ignore[attr-defined]
    bs = batch_size or cfg.batch_size or 32
    generator = torch.Generator().manual_seed(cfg.seed)
    return torch.utils.data.DataLoader(
        dataset, batch_size=bs, shuffle=shuffle, drop_last=drop_last and len(dataset) >= bs,  # type: ignore[arg-type]
        num_workers=workers, pin_memory=device.cuda, persistent_workers=workers > 0,
        prefetch_factor=4 if workers > 0 else None, generator=generator, collate_fn=collate)


# -- callbacks --------------------------------------------------------------------------------------------------
def _batch_len(batch: Any) -> int:
    """Samples in a batch (the first dimension of its first tensor), without touching the device."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0])
    if isinstance(batch, dict):
        for v in batch.values():
            n = _batch_len(v)
            if n:
                return n
    if isinstance(batch, (list, tuple)):
        for v in batch:
            n = _batch_len(v)
            if n:
                return n
    return 0


def _current_lr(trainer: Any) -> float | None:
    opts = trainer.optimizers
    if not opts:
        return None
    return float(opts[0].param_groups[0]["lr"])


def _to_float(value: Any) -> float | None:
    try:
        out = float(value.item() if hasattr(value, "item") else value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


class EventsCallback(pl.Callback):
    """Progress events, the per-epoch history, and cancellation through ``events.check_cancel``.

    The loss is summed on the device and read back (one sync) only when a progress event is due, at most every
    ``interval_s`` seconds, so a GPU is never made to wait on each step.
    """

    def __init__(self, events: Events, interval_s: float = 1.0, world_size: int = 1,
                 stage: str = "train") -> None:
        self.events = events
        self.interval_s = interval_s
        self.world_size = world_size
        self.stage = stage
        self.history: list[dict[str, float | None]] = []
        self.cancel_requested = False
        self.imgs_per_s: float | None = None
        self.last_loss: float | None = None
        self._reset_epoch()
        self._t_start = time.monotonic()
        self._step_start: int | None = None
        self._t_last = 0.0
        self._n_since = 0
        self._t_window = time.monotonic()
        self._rates: list[float] = []

    def _reset_epoch(self) -> None:
        self._loss_sum: Any = 0.0
        self._loss_n = 0
        self._win_sum: Any = 0.0
        self._win_n = 0

    # state survives --resume (plain lists of floats: loadable with weights_only=True)
    def state_dict(self) -> dict[str, Any]:
        return {"history": [dict(h) for h in self.history]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = [dict(h) for h in state_dict.get("history", [])]

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self._t_start = self._t_window = time.monotonic()
        self._step_start = trainer.global_step
        self._n_since = 0

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._reset_epoch()

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor):
            loss = loss.detach()
            self._loss_sum = self._loss_sum + loss
            self._win_sum = self._win_sum + loss
            self._loss_n += 1
            self._win_n += 1
        self._n_since += _batch_len(batch) * self.world_size
        self._check_cancel(trainer)
        now = time.monotonic()
        total = trainer.estimated_stepping_batches
        step = trainer.global_step
        last = isinstance(total, int) and step >= total
        if now - self._t_last >= self.interval_s or last or self.cancel_requested or step == 1:
            self._emit(trainer, now, step, total)

    def _check_cancel(self, trainer: Any) -> None:
        wanted = self.events.cancelled
        if trainer.world_size > 1:  # every rank must stop at the same step, or the next all-reduce hangs
            wanted = bool(trainer.strategy.reduce_boolean_decision(wanted, all=False))
        if wanted and not self.cancel_requested:
            self.cancel_requested = True
            trainer.should_stop = True

    def _emit(self, trainer: Any, now: float, step: int, total: Any) -> None:
        rate = self._n_since / max(now - self._t_window, 1e-9)
        self._rates.append(rate)
        self.imgs_per_s = rate
        self._t_window, self._n_since, self._t_last = now, 0, now
        if self._win_n:
            self.last_loss = _to_float(self._win_sum / self._win_n)
        self._win_sum, self._win_n = 0.0, 0
        if not trainer.is_global_zero:
            return
        done = step - (self._step_start or 0)
        total_i = int(total) if isinstance(total, (int, float)) and math.isfinite(total) else None
        eta = None
        if total_i and done > 0:
            eta = round((now - self._t_start) / done * max(total_i - step, 0), 1)
        self.events.progress(step, total_i, stage=self.stage, epoch=trainer.current_epoch, loss=self.last_loss,
                             lr=_current_lr(trainer), imgs_per_s=round(rate, 1), eta_s=eta)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        row: dict[str, float | None] = {"epoch": float(trainer.current_epoch), "step": float(trainer.global_step),
                                        "loss": _to_float(self._loss_sum / self._loss_n) if self._loss_n else None,
                                        "lr": _current_lr(trainer)}
        for key, value in trainer.callback_metrics.items():
            if key not in row:
                row[key] = _to_float(value)
        extra = getattr(pl_module, "epoch_metrics", None)  # a module's own per-epoch numbers (e.g. collapse)
        if callable(extra):
            for key, value in (extra() or {}).items():
                row[key] = _to_float(value)
        self.history.append(row)

    @property
    def mean_imgs_per_s(self) -> float | None:
        rates = self._rates[1:] or self._rates  # the first window holds start-up (workers, first kernels)
        return float(sum(rates) / len(rates)) if rates else None


class ResumableCheckpoint(pl.Callback):
    """``last.ckpt`` every ``every_n_steps`` steps, on cancellation and at the end; written atomically."""

    def __init__(self, dirpath: Path, every_n_steps: int, events_cb: EventsCallback | None = None) -> None:
        self.dirpath = Path(dirpath)
        self.every = max(0, int(every_n_steps))
        self.events_cb = events_cb
        self._saved_at = -1

    def save(self, trainer: Any) -> Path:
        path = self.dirpath / LAST
        tmp = output_paths.temp_path(self.dirpath / LAST)
        if trainer.is_global_zero:
            self.dirpath.mkdir(parents=True, exist_ok=True)
        # all the state (optimiser, loops, callbacks), for resuming; a collective under DDP: rank 0 writes
        trainer.save_checkpoint(tmp, weights_only=False)
        if trainer.is_global_zero:
            os.replace(tmp, path)
        trainer.strategy.barrier("eo-ssl checkpoint")
        self._saved_at = trainer.global_step
        return path

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        step = trainer.global_step
        cancel = self.events_cb is not None and self.events_cb.cancel_requested
        if (cancel or (self.every and step % self.every == 0)) and step != self._saved_at:
            self.save(trainer)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.global_step != self._saved_at:
            self.save(trainer)


# -- fit --------------------------------------------------------------------------------------------------------
@dataclass
class FitResult:
    trainer: Any
    device: DeviceChoice
    history: list[dict[str, float | None]]
    global_step: int
    epochs_done: int
    checkpoint: Path | None
    resumed_from_step: int | None
    imgs_per_s: float | None
    final_loss: float | None
    elapsed_s: float
    is_global_zero: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


def build_trainer(cfg: TrainConfig, device: DeviceChoice, callbacks: Iterable[Any] = (), **overrides: Any) -> Any:
    """A Trainer with eo-ssl's settings: no logger, no progress bar, our checkpointing, ``cfg``'s limits."""
    max_steps = cfg.max_steps if cfg.max_steps is not None else -1
    max_epochs = cfg.epochs if cfg.epochs is not None else (None if max_steps > 0 else 1)
    if max_epochs is None:
        max_epochs = -1  # --max-steps alone: as many epochs as it takes
    kwargs: dict[str, Any] = dict(
        accelerator=device.accelerator, devices=device.devices, num_nodes=device.num_nodes,
        strategy=device.strategy, precision=device.precision, max_epochs=max_epochs, max_steps=max_steps,
        logger=False, enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
        callbacks=list(callbacks), num_sanity_val_steps=0, use_distributed_sampler=True,
        # deterministic=None: torch's own setting stays (tests turn deterministic algorithms on; False would undo it)
        log_every_n_steps=1, default_root_dir=None, deterministic=None, benchmark=device.cuda)
    kwargs.update(overrides)
    trainer = pl.Trainer(**kwargs)
    _leave_signals_to_the_cli(trainer)
    return trainer


def _leave_signals_to_the_cli(trainer: Any) -> None:
    """Keep Lightning from installing its own SIGTERM handler for ``fit``/``validate``.

    Lightning's handler makes the loop raise ``SIGTERMException`` (a ``SystemExit``) at the end of the step in which
    the signal came; when that was after our callback's check, the run left without a checkpoint, an event or an exit
    code that says so (exit 0: issue 21). The CLI's handler (:meth:`backend.events.Events.signal_handlers`) is the one
    authority: it marks the run cancelled, :class:`EventsCallback` stops the trainer at the next step (every DDP rank
    at the same one) and :class:`ResumableCheckpoint` saves the checkpoint. Lightning also killed DDP children on
    SIGTERM; here they stop with rank 0, through the same decision."""
    connector = getattr(trainer, "_signal_connector", None)
    if connector is not None and hasattr(connector, "register_signal_handlers"):
        connector.register_signal_handlers = lambda: None


def fit(module: Any, train_loader: Any, cfg: TrainConfig, out_dir: str | Path, events: Events, *,
        device: DeviceChoice | None = None, val_loader: Any = None, callbacks: Sequence[Any] = (),
        stage: str = "train", progress_interval_s: float = 1.0, **trainer_overrides: Any) -> FitResult:
    """Train ``module`` on ``train_loader`` with checkpoints in ``out_dir/checkpoints`` (resumed with ``--resume``).

    Raises :class:`Cancelled` (after saving a resumable checkpoint) when the user cancels.
    """
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    apply_threads(cfg)
    device = device or resolve_device(cfg.devices, cfg.strategy, cfg.precision, cfg.num_nodes)
    ckpt_dir = checkpoint_dir(out_dir)
    ckpt_path: Path | None = None
    resumed_from: int | None = None
    if cfg.resume:
        ckpt_path = ckpt_dir / LAST
        resumed_from = checkpoint_step(ckpt_path)
        events.log(f"resuming from {ckpt_path} at step {resumed_from}")
    elif (ckpt_dir / LAST).exists():
        events.log(f"starting afresh: the checkpoint in {ckpt_dir} will be replaced (use --resume to continue it)")
    output_paths.sweep_stale(ckpt_dir / LAST)  # left by a run killed while it wrote a checkpoint
    events.check_cancel()
    if device.cuda:
        from backend.models import to_channels_last

        module = to_channels_last(module)
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    events_cb = EventsCallback(events, interval_s=progress_interval_s, world_size=device.world_size, stage=stage)
    ckpt_cb = ResumableCheckpoint(ckpt_dir, cfg.checkpoint_every, events_cb)
    trainer = build_trainer(cfg, device, [events_cb, ckpt_cb, *callbacks], **trainer_overrides)
    if trainer.is_global_zero:
        events.log(device.description)
    t0 = time.monotonic()
    try:
        trainer.fit(module, train_dataloaders=train_loader, val_dataloaders=val_loader,
                    ckpt_path=str(ckpt_path) if ckpt_path else None, weights_only=True)
    except (SIGTERMException, KeyboardInterrupt, SystemExit) as exc:
        # Lightning's own ways out (its SIGTERM handler, should it ever be installed; sys.exit(1) after a second
        # Ctrl-C): the run was stopped by a signal, whatever Lightning made of it
        if not events.cancelled:
            raise
        saved = (ckpt_dir / LAST).exists()
        raise Cancelled(f"cancelled at step {trainer.global_step}"
                        + (f"; the last checkpoint is in {ckpt_dir / LAST}" if saved else "")) from exc
    cancelled = events_cb.cancel_requested or events.cancelled
    if trainer.world_size > 1:  # a signal after the last step's check: every rank must agree, or one goes on alone
        cancelled = bool(trainer.strategy.reduce_boolean_decision(cancelled, all=False))
    if cancelled:  # a stop within the last step still ends in a checkpoint (on_train_end saved it)
        raise Cancelled(f"cancelled at step {trainer.global_step}; checkpoint saved in {ckpt_dir / LAST}")
    history = events_cb.history
    final_loss = events_cb.last_loss
    if final_loss is None and history:
        final_loss = history[-1].get("loss")
    return FitResult(trainer=trainer, device=device, history=history, global_step=int(trainer.global_step),
                     epochs_done=int(trainer.current_epoch), checkpoint=ckpt_dir / LAST if (ckpt_dir / LAST).exists()
                     else None, resumed_from_step=resumed_from, imgs_per_s=events_cb.mean_imgs_per_s,
                     final_loss=final_loss, elapsed_s=time.monotonic() - t0, is_global_zero=trainer.is_global_zero)
