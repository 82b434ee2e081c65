"""``eo-ssl finetune``: supervised fine-tuning (or a frozen-encoder probe) on the labels of a chip store.
Long because: task data, network, LightningModule, loop and package are one command's steps, each used by the next.

- ``--task segmentation`` on a cube with rasterised parcels: an smp U-Net / DeepLabV3+ / DeepLabV3 over the encoder
  (:mod:`backend.models.segmentation`); pixels outside training parcels are ignored (-1).
- ``--task classification`` on a chip store (EuroSAT-style folders, or an ``export-dataset`` folder): the encoder's
  pooled features + a linear or MLP head (:mod:`backend.models.classifier`).

``--init`` is a model package (pre-trained or fine-tuned: its ``encoder.`` weights are loaded, and its bands and
normalisation are kept), ``random``, or a bare ``.safetensors`` file of encoder weights (timm names, with or without
the ``encoder.`` prefix; ``--encoder`` names the architecture). The data's bands are matched to the package's by name
(see :mod:`backend.models.inputs`). The encoders are 2D: from a multi-date cube a model reads one date
(:func:`backend.data.dates.choose_date`). Label fractions are drawn by parcel or by chip, stratified and seeded
(:mod:`backend.data.labelled`).

The loop is the shared Lightning template (:mod:`backend.train.runner`): devices, precision, progress events,
cancellation, resumable checkpoints. At the end the model is scored once more on the whole validation split and
written as a model package (weights + ``model.json`` + ``training_curves.png``); the checkpoints are removed then.

The task data, the network, the LightningModule, the training loop with its
final validation and the package metadata are one command's steps, each used by the next (``evaluate`` and
``compare`` reuse them as ``ft.*``); where the encoder's weights come from is :mod:`backend.train.init_source`.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.aggregation import SumMetric
from torchmetrics.classification import MulticlassConfusionMatrix

from backend import options
from backend.data.chipstore import ChipStore, grid_resolution
from backend.data.dates import DateChoice, choose_date
from backend.data.labelled import (
    Chips,
    CubeCrops,
    CubeReader,
    CubeWindows,
    check_training_classes,
    chip_split,
    classes_of,
    draw_fraction,
    parcels_per_class,
    store_channels,
    store_stats,
    train_parcels,
    warn_few_validation_parcels,
)
from backend.errors import EoSslError
from backend.events import Events
from backend.models import provenance
from backend.models.inputs import InputSpec, match_channels, spec_from_meta, spec_from_stats
from backend.report.metrics import confusion, headline, scores
from backend.task import TrainingTask
from backend.train import model_folder, runner
from backend.train.init_source import InitSource, load_init

TASKS = options.TASKS
DEFAULTS = {"epochs": 20, "batch_size": 16}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options, declared in :mod:`backend.options`."""
    options.add_arguments(p, "finetune")


# -- data -----------------------------------------------------------------------------------------------------------
@dataclass
class TaskData:
    task: str
    store: ChipStore
    spec: InputSpec
    classes: list[dict[str, Any]]
    train: torch.utils.data.Dataset
    val: torch.utils.data.Dataset | None
    info: dict[str, Any] = field(default_factory=dict)
    crop: int | None = None
    date: DateChoice | None = None

    @property
    def class_names(self) -> list[str]:
        return [c["name"] for c in self.classes]


def input_spec(store: ChipStore, init: InitSource, warn: Any) -> tuple[InputSpec, list[tuple[str, int]]]:
    """The model's input (the package's, or all the store's bands for a fresh model) and where each channel is."""
    available, _ = store_channels(store)
    stats = store_stats(store)
    if init.meta is not None:
        spec = spec_from_meta(init.meta, fallback=stats, warn=warn)
    else:
        spec = spec_from_stats([(s, b) for s, bands in available.items() for b in bands], stats)
    picks = match_channels(spec.channels, available, f"the data in {store.path}", warn)
    return spec, picks


def default_task(store: ChipStore) -> str:
    return "classification" if store.kind == "chips" else "segmentation"


def build_task_data(store: ChipStore, task: str, spec: InputSpec, picks: list[tuple[str, int]], *,
                    label_fraction: float = 1.0, seed: int = 0, crop: int = 128, samples_per_epoch: int = 1024,
                    date: str | None = None, warn: Any = None, balance: bool = True,
                    keep_parcels: np.ndarray | None = None) -> TaskData:
    classes = classes_of(store)
    if task == "segmentation":
        if store.kind != "cube":
            raise EoSslError("wrong_store_kind", f"{store.path} holds chips; segmentation trains on a prepared cube "
                             "with rasterised parcels.", "Use --task classification, or prepare a cube with --parcels.")
        choice = choose_date(store, spec.sensors, date)
        ids, cls, n_total = train_parcels(store)
        if len(ids) == 0:
            raise EoSslError("no_samples", f"{store.path} has no training parcels.", "Prepare with --parcels.")
        keep = None
        used = len(ids)
        per_class = {c["name"]: int((cls == c["id"]).sum()) for c in classes}
        if keep_parcels is not None:  # parcels chosen by the caller (e.g. K per class in a benchmark)
            keep = keep_parcels
            kept = keep_parcels[np.clip(ids, 0, len(keep_parcels) - 1)] & (ids < len(keep_parcels))
            used = int(kept.sum())
            per_class = {c["name"]: int((cls[kept] == c["id"]).sum()) for c in classes}
        elif label_fraction < 1.0:
            mask = draw_fraction(cls, label_fraction, seed)
            keep = np.zeros(n_total, bool)
            keep[ids[mask]] = True
            used = int(mask.sum())
            per_class = {c["name"]: int((cls[mask] == c["id"]).sum()) for c in classes}
        check_training_classes(per_class, warn)
        h, w = store.shape
        size = min(crop, h, w) // 32 * 32
        if size < 32:
            raise EoSslError("grid_too_small", f"The grid of {store.path} is {w} x {h} px; segmentation needs at "
                             "least 32 x 32.", "Prepare a larger AOI.")
        train = CubeCrops(CubeReader(store, spec, picks, choice, "train", keep), size, samples_per_epoch, seed,
                          balance=balance)
        val_size = min(max(size, 256), h, w) // 32 * 32
        val: torch.utils.data.Dataset | None = CubeWindows(CubeReader(store, spec, picks, choice, "val"), val_size)
        if len(val) == 0:  # type: ignore[arg-type]
            val = None
            if warn is not None:
                warn("no_validation", f"{store.path} has no validation parcels: no validation metrics.")
        info = {"unit": "parcel", "label_fraction": label_fraction, "train_parcels_total": int(len(ids)),
                "train_parcels_used": used, "train_parcels_per_class": per_class,
                "val_parcels_per_class": parcels_per_class(store, "val"),
                "val_windows": len(val) if val is not None else 0, "date": choice.dates, "date_rule": choice.rule}
        return TaskData(task, store, spec, classes, train, val, info, size, choice)
    if task != "classification":
        raise EoSslError("bad_argument", f"Unknown task {task!r}.", f"Use one of: {', '.join(TASKS)}.")
    if store.kind != "chips":
        raise EoSslError("wrong_store_kind", f"{store.path} is a cube; classification trains on chips.",
                         "Use --task segmentation, or prepare chips (--chips, or export-dataset then --chips).")
    available, index = store_channels(store)
    assert index is not None
    channel_index = [index[(s, available[s][i])] for s, i in picks]
    labels = np.asarray(store.array("chip_labels"), np.int64)
    train_idx = chip_split(store, "train")
    if len(train_idx) == 0:
        raise EoSslError("no_samples", f"{store.path} has no training chips.", "Prepare the chips again.")
    mask = draw_fraction(labels[train_idx], label_fraction, seed) if label_fraction < 1.0 else np.ones(
        len(train_idx), bool)
    used_idx = train_idx[mask]
    check_training_classes({c["name"]: int((labels[used_idx] == c["id"]).sum()) for c in classes}, warn, "chip")
    val_idx = chip_split(store, "val")
    train = Chips(store, spec, channel_index, used_idx, train=True, seed=seed)
    val: torch.utils.data.Dataset | None = Chips(store, spec, channel_index, val_idx) if len(val_idx) else None
    if val is None and warn is not None:
        warn("no_validation", f"{store.path} has no validation chips: no validation metrics.")
    info = {"unit": "chip", "label_fraction": label_fraction, "train_chips_total": int(len(train_idx)),
            "train_chips_used": int(len(used_idx)),
            "train_chips_per_class": {c["name"]: int((labels[used_idx] == c["id"]).sum()) for c in classes},
            "val_chips": int(len(val_idx))}
    return TaskData(task, store, spec, classes, train, val, info, None, None)


# -- model ------------------------------------------------------------------------------------------------------
def build_net(task: str, init: InitSource, spec: InputSpec, num_classes: int, *, arch: str = "unet",
              head: str = "linear", log: Any = None) -> nn.Module:
    """The network for ``task`` with ``init``'s encoder weights loaded (and checked: every tensor must fit)."""
    from backend.train.networks import create_network

    base = (init.meta or {}).get("architecture") or {}
    if base.get("family") == "unet3d" or (task == "segmentation" and arch == "unet3d"):
        architecture = {**base, "family": "unet3d"}  # a dense-moco backbone's sizes (or the defaults)
    else:
        architecture = {"family": "timm", "encoder": init.encoder, "decoder": arch if task == "segmentation" else head}
    net = create_network(task, architecture, len(spec.channels), num_classes, per_band=spec.per_band)
    if init.encoder_state is not None:
        report = net.load_encoder(init.encoder_state)  # type: ignore[operator]
        if report.missing:
            raise EoSslError("weights_mismatch", f"{init.path} lacks {len(report.missing)} of the {init.encoder} "
                             f"encoder's tensors (e.g. {', '.join(report.missing[:3])}).",
                             "Give --encoder with the architecture the weights were saved from.")
        if log is not None:
            log(f"encoder from {init.path}: {report.summary()}")
    return net


class FinetuneModule(TrainingTask):
    """Cross-entropy training (ignore -1) of a segmentation or classification net, scored on a confusion matrix.

    - ``freeze_encoder``: the encoder (weights and BatchNorm statistics) stays fixed for the whole run;
      ``frozen_fraction``: only for that first share of the steps, then the whole network trains (linear probe then
      fine-tune: a pre-trained encoder is not torn apart by the gradients of a random decoder).
    - The best validation epoch is kept (``best_metric``: mIoU for segmentation, macro F1 for classification): with a
      few labelled parcels the last epoch is often past the point where the model starts memorising them, and the
      validation parcels are the only honest judge. Its weights travel in the checkpoint, so ``--resume`` keeps them
      (in memory and in ``last.ckpt``, not as a second checkpoint file as Lightning's ``ModelCheckpoint(monitor=...)``
      would write: a package folder holds one checkpoint while it trains).
    """

    #: the schedule's length when Lightning cannot count the steps
    UNKNOWN_STEPS = 1000

    def __init__(self, net: nn.Module, num_classes: int, *, lr: float = 1e-3, encoder_lr: float | None = None,
                 weight_decay: float = 1e-4, freeze_encoder: bool = False, warmup_fraction: float = 0.05,
                 frozen_fraction: float = 0.0, best_metric: str | None = "miou",
                 class_weights: torch.Tensor | None = None) -> None:
        super().__init__({"num_classes": num_classes, "lr": lr, "encoder_lr": encoder_lr, "weight_decay": weight_decay,
                          "freeze_encoder": freeze_encoder, "warmup_fraction": warmup_fraction,
                          "frozen_fraction": frozen_fraction, "best_metric": best_metric,
                          "class_weights": class_weights.tolist() if class_weights is not None else None})
        self.net = net
        self.num_classes = num_classes
        self.lr, self.encoder_lr, self.weight_decay = lr, encoder_lr if encoder_lr is not None else lr, weight_decay
        self.freeze_encoder, self.warmup_fraction = freeze_encoder, warmup_fraction
        self.frozen_fraction = 1.0 if freeze_encoder else float(frozen_fraction)
        self.best_metric = best_metric
        self.best: dict[str, Any] | None = None  # {"state", "score", "epoch", "step"}
        self.register_buffer("class_weights", class_weights if class_weights is not None else torch.ones(num_classes),
                             persistent=False)
        self._frozen = False
        self._set_frozen(self.frozen_fraction > 0)
        # torchmetrics accumulates over the epoch and sums over DDP ranks in compute(); not in the state dict
        self.val_confusion = MulticlassConfusionMatrix(num_classes, ignore_index=-1, validate_args=False)
        self.val_loss_sum, self.val_labelled = SumMetric(), SumMetric()
        self.last_confusion: torch.Tensor | None = None  # of the last validation epoch (all ranks summed)

    def _set_frozen(self, frozen: bool) -> None:
        if frozen == self._frozen:
            return
        for p in self.net.encoder_module.parameters():
            p.requires_grad_(not frozen)
        self._frozen = frozen
        if not frozen and self.training:
            self.net.encoder_module.train()

    def _frozen_steps(self) -> int:
        if self.frozen_fraction >= 1:
            return 2**62
        return int(self.frozen_fraction * self.total_steps)

    def train(self, mode: bool = True) -> FinetuneModule:
        super().train(mode)
        if self._frozen:  # frozen means frozen: BatchNorm statistics too
            self.net.encoder_module.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        if self._frozen and self.global_step >= self._frozen_steps():
            self._set_frozen(False)
        if self._frozen and self.net.encoder_module.training:
            # Lightning restores each submodule's own mode around validation, past any train() override
            self.net.encoder_module.eval()
        logits = self.net(self.channels_last(batch["x"]))
        y = batch["label"]
        if not bool((y >= 0).any()):
            return logits.sum() * 0.0  # a batch without a labelled pixel: no gradient, no NaN
        return F.cross_entropy(logits.float(), y, weight=self.class_weights, ignore_index=-1)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        logits = self.net(self.channels_last(batch["x"])).float()
        y = batch["label"]
        n = (y >= 0).sum()
        if n > 0:
            self.val_loss_sum.update(F.cross_entropy(logits, y, ignore_index=-1, reduction="sum"))
            self.val_labelled.update(n.float())
        self.val_confusion.update(logits.argmax(1), y)

    def on_validation_epoch_end(self) -> None:
        cm = self.val_confusion.compute()
        labelled = float(self.val_labelled.compute()) if self.val_labelled.update_count else 0.0
        loss_sum = float(self.val_loss_sum.compute()) if labelled else 0.0
        for metric in (self.val_confusion, self.val_loss_sum, self.val_labelled):
            metric.reset()
        self.last_confusion = cm.cpu()
        s = scores(cm.cpu().numpy())
        logs = {f"val/{k}": float(v) for k, v in headline(s).items() if v is not None}
        if labelled > 0:
            logs["val/loss"] = loss_sum / labelled
        self.log_dict(logs, on_epoch=True, prog_bar=False, logger=False)
        if self.trainer.state.fn != "fit":  # trainer.validate after training: a score, not a candidate epoch
            return
        score = s.get(self.best_metric) if self.best_metric else None
        if score is not None and (self.best is None or score > self.best["score"]):
            self.best = {"state": {k: v.detach().cpu().clone() for k, v in self.net.state_dict().items()},
                         "score": float(score), "epoch": int(self.current_epoch), "step": int(self.global_step)}

    def restore_best(self) -> dict[str, Any] | None:
        """Load the best validation epoch's weights into ``net``; what was restored (None: nothing to restore)."""
        if self.best is None:
            return None
        self.net.load_state_dict(self.best["state"])
        return {k: v for k, v in self.best.items() if k != "state"} | {"metric": self.best_metric}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["eo_ssl_best"] = self.best  # tensors and plain numbers: loadable with weights_only=True

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.best = checkpoint.get("eo_ssl_best")

    def configure_optimizers(self) -> Any:
        enc = {id(p) for p in self.net.encoder_module.parameters()}
        groups = [{"params": [p for p in self.net.parameters() if p.requires_grad and id(p) not in enc],
                   "lr": self.lr}]
        # frozen for a while only: in the optimiser from the start (no gradient, so no update, until unfrozen)
        enc_params = [p for p in self.net.encoder_module.parameters()] if not self.freeze_encoder else []
        if enc_params:
            groups.append({"params": enc_params, "lr": self.encoder_lr})
        opt = torch.optim.AdamW(groups, weight_decay=self.weight_decay)
        # the SSL methods' schedule: linear warm-up, then cosine down to 0 at the last step
        return self.warmup_cosine(opt, max(1, int(self.warmup_fraction * self.total_steps)), end_value=0.0)


@torch.no_grad()
def confusion_on(net: nn.Module, loader: Any, device: torch.device, num_classes: int) -> np.ndarray:
    """The confusion matrix of ``net`` over every labelled entry of ``loader``."""
    was = net.training
    net.eval().to(device)
    cm = torch.zeros(num_classes, num_classes, dtype=torch.long, device=device)
    amp = device.type == "cuda"
    for batch in loader:
        x = batch["x"].to(device, non_blocking=True)
        with torch.autocast(device.type, enabled=amp, dtype=torch.bfloat16 if amp else torch.float32):
            logits = net(x.contiguous(memory_format=torch.channels_last) if amp else x)
        cm += confusion(batch["label"].to(device), logits.float().argmax(1), num_classes)
    net.train(was)
    return cm.cpu().numpy()


def val_loader(data: TaskData, batch_size: int, cuda: bool = False, world_size: int = 1, rank: int = 0) -> Any:
    """The validation split in order; with ``world_size`` > 1 each rank reads its share once (no padding repeats,
    so the summed confusion matrix counts every entry once)."""
    if data.val is None:
        return None
    sampler = None
    if world_size > 1:
        from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSamplerWrapper

        sampler = UnrepeatedDistributedSamplerWrapper(torch.utils.data.SequentialSampler(data.val),
                                                      num_replicas=world_size, rank=rank, shuffle=False)
    return torch.utils.data.DataLoader(data.val, batch_size=batch_size, shuffle=False, sampler=sampler,
                                       num_workers=0, pin_memory=cuda)


@dataclass
class TrainOutcome:
    net: nn.Module
    fit: runner.FitResult
    confusion: np.ndarray | None
    scores: dict[str, Any] | None


def train(data: TaskData, net: nn.Module, cfg: runner.TrainConfig, out_dir: Path, events: Events, *,
          lr: float = 1e-3, encoder_lr: float | None = None, weight_decay: float = 1e-4,
          freeze_encoder: bool = False, frozen_fraction: float = 0.0, keep_best: bool = True,
          stage: str = "finetune") -> TrainOutcome:
    """Fit ``net`` on ``data.train`` (validating each epoch), keep the best validation epoch (``keep_best``), and
    score it on the whole validation split."""
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    device = runner.resolve_device(cfg.devices, cfg.strategy, cfg.precision, cfg.num_nodes)
    metric = "miou" if data.task == "segmentation" else "f1_macro"
    module = FinetuneModule(net, len(data.classes), lr=lr, encoder_lr=encoder_lr, weight_decay=weight_decay,
                            freeze_encoder=freeze_encoder, frozen_fraction=frozen_fraction,
                            best_metric=metric if keep_best else None)
    bs = cfg.batch_size or DEFAULTS["batch_size"]
    loader = runner.make_loader(data.train, cfg, device, shuffle=True, drop_last=True, batch_size=bs)
    vloader = val_loader(data, bs, device.cuda)
    fit = runner.fit(module, loader, cfg, out_dir, events, device=device, val_loader=vloader, stage=stage)
    best = module.restore_best() if keep_best else None  # every rank: each holds the same (summed) best epoch
    cm = None
    if vloader is not None:  # the kept weights scored once more on the whole validation split, by every rank
        trainer = fit.trainer
        trainer.validate(module, val_loader(data, bs, device.cuda, trainer.world_size, trainer.global_rank),
                         verbose=False, weights_only=True)
        assert module.last_confusion is not None
        cm = module.last_confusion.numpy()
    if not fit.is_global_zero:
        return TrainOutcome(net, fit, None, None)
    if best is not None:
        fit.extra["best"] = best
        events.log(f"kept the best validation epoch: {best['epoch'] + 1} (step {best['step']}, val {metric} "
                   f"{best['score']:.3f})")
    s = scores(cm, data.class_names) if cm is not None else None
    net.cpu()
    return TrainOutcome(net, fit, cm, s)


# -- command ----------------------------------------------------------------------------------------------------
RESUME_KEYS = ("task", "data", "init", "encoder", "arch", "head", "channels", "label_fraction", "seed", "date",
               "freeze_encoder", "crop", "frozen_fraction", "class_balance")
#: share of the steps a pre-trained encoder stays frozen by default (linear probe, then fine-tune)
PRETRAINED_FROZEN_FRACTION = 0.3


def default_frozen_fraction(init: InitSource, asked: float | None) -> float:
    if asked is not None:
        if not 0 <= asked <= 1:
            raise EoSslError("bad_argument", f"--frozen-fraction {asked} is not in [0, 1].", "Use e.g. 0.3.")
        return float(asked)
    return PRETRAINED_FROZEN_FRACTION if init.kind in ("package", "file") else 0.0


def run(args: argparse.Namespace, events: Events) -> dict[str, Any]:
    out = Path(args.out)
    cfg = runner.TrainConfig.from_args(args, **DEFAULTS)
    if runner.is_main_process():
        model_folder.check_out(out, cfg.resume, args.overwrite, options.paths("finetune", args, "input"))
    store = ChipStore(args.data)
    if args.arch == "pixel":
        from backend.pixel import command as pixel_command

        init = load_init(args.init, args.encoder, events.warning) if args.init not in (None, "none") else None
        return pixel_command.run(args, events, store, init, out)
    if args.init == "none":
        raise EoSslError("bad_argument", "--init none is for --arch pixel (spectra only).",
                         "Use --init random or a model package.")
    task = args.task or default_task(store)
    init = load_init(args.init, args.encoder, events.warning)
    if init.kind == "package" and ((init.meta or {}).get("architecture") or {}).get("family") in ("presto", "series"):
        raise EoSslError("unsupported_model", f"{args.init} is a pixel time-series encoder: it gives the pixel "
                         "classifier an embedding, not a U-Net its encoder.", "Use --arch pixel with this --init.")
    spec, picks = input_spec(store, init, events.warning)
    data = build_task_data(store, task, spec, picks, label_fraction=args.label_fraction, seed=cfg.seed,
                           crop=args.crop, samples_per_epoch=args.samples_per_epoch, date=args.date,
                           warn=events.warning, balance=not args.no_class_balance)
    frozen = default_frozen_fraction(init, args.frozen_fraction)
    if task == "segmentation":
        warn_few_validation_parcels(data.info["val_parcels_per_class"], events.warning)
    events.log(f"{task} on {store.path}: {len(data.classes)} classes ({', '.join(data.class_names)}); "
               f"{_describe_labels(data.info)}" + (f"; date {data.date.describe()}" if data.date else ""))
    net = build_net(task, init, spec, len(data.classes), arch=args.arch, head=args.head, log=events.log)
    events.log(f"model: {_describe_arch(net)} over {len(spec.channels)} channels ({spec.channel_mode}), init "
               f"{init.label}" + (", encoder frozen" if args.freeze_encoder else
                                  f", encoder frozen for the first {frozen:.0%} of the steps" if frozen else ""))
    run_config = {"task": task, "data": str(Path(args.data).resolve()), "init": args.init or "random",
                  "encoder": init.encoder,
                  "arch": args.arch if task == "segmentation" else None,
                  "head": args.head if task == "classification" else None,
                  "channels": [list(c) for c in spec.channels], "label_fraction": args.label_fraction,
                  "seed": cfg.seed, "date": data.date.dates if data.date else None,
                  "freeze_encoder": bool(args.freeze_encoder), "crop": data.crop, "frozen_fraction": frozen,
                  "class_balance": not args.no_class_balance}
    if runner.is_main_process():
        model_folder.begin(out, run_config, RESUME_KEYS, resume=cfg.resume, overwrite=args.overwrite)
    outcome = train(data, net, cfg, out, events, lr=args.lr, encoder_lr=args.encoder_lr,
                    weight_decay=args.weight_decay, freeze_encoder=args.freeze_encoder, frozen_fraction=frozen,
                    keep_best=not args.keep_last)
    if not outcome.fit.is_global_zero:
        return {}
    meta = package_meta(data, net, init, cfg, outcome, args)
    model_folder.write_package(out, net.package_state_dict(), meta, events, history=outcome.fit.history,
                               curves=_curve_keys(task), title=f"fine-tune {task} ({init.label})",
                               keep_checkpoints=False)
    val = headline(outcome.scores) if outcome.scores else {}
    summary: dict[str, Any] = {"out": str(out), "task": task, "init": init.label,
                               "final_loss": outcome.fit.final_loss, "steps": outcome.fit.global_step,
                               "epochs": outcome.fit.epochs_done}
    summary.update({f"val_{k}": (round(v, 4) if v is not None else None) for k, v in val.items()})
    return summary


def _curve_keys(task: str) -> list[tuple[str, str]]:
    keys = [("loss", "training loss"), ("val/loss", "validation loss"), ("val/oa", "validation OA")]
    keys.append(("val/miou", "validation mIoU") if task == "segmentation" else ("val/f1_macro", "validation macro F1"))
    return keys


def _describe_labels(info: dict[str, Any]) -> str:
    unit = info["unit"]
    return (f"{info[f'train_{unit}s_used']} of {info[f'train_{unit}s_total']} training {unit}s "
            f"(label fraction {info['label_fraction']:g})")


def _describe_arch(net: nn.Module) -> str:
    d = net.describe()  # type: ignore[operator]
    return f"{d['encoder']} + {d['decoder']}"


def package_meta(data: TaskData, net: nn.Module, init: InitSource, cfg: runner.TrainConfig, outcome: TrainOutcome,
                 args: argparse.Namespace) -> dict[str, Any]:
    """``model.json`` of a fine-tuned model (see docs/DESIGN.md)."""
    resolution, res_source = grid_resolution(data.store)
    manifest = data.store.manifest
    inp_extra: dict[str, Any] = {"crop": data.crop or int(manifest.get("chips", {}).get("size", [64])[0]),
                                 "dates": "single", "time_steps": 1}
    if data.date is not None and data.date.composite is not None:
        inp_extra.update(dates="composite", composite=data.date.composite, date_rule=data.date.rule,
                         trained_on=data.date.describe(), time_steps={s: len(d) for s, d in
                                                                     data.date.composite.items()})
    elif data.date is not None:
        inp_extra.update(date=data.date.dates, date_rule="most valid pixels in the AOI, or --date at prediction",
                         trained_on=data.date.describe())
    fit = outcome.fit
    metrics: dict[str, Any] = {"final_loss": fit.final_loss}
    best = fit.extra.get("best")
    if outcome.scores is not None:
        metrics["val"] = {k: v for k, v in outcome.scores.items() if k not in ("recall_per_class",
                                                                                  "precision_per_class")}
        metrics["val_confusion"] = outcome.confusion.tolist() if outcome.confusion is not None else None
        unit = "parcels" if data.task == "segmentation" else "chips"
        metrics["val_source"] = (f"validation split: {unit} never used for training"
                                 + ("; also used to choose the epoch kept, so slightly optimistic" if best else ""))
    if data.task == "segmentation":
        metrics["val_parcels"] = data.info.get("val_parcels_per_class")
    meta: dict[str, Any] = {
        "task": data.task, "method": "supervised", "variant": None,
        "architecture": net.describe(),  # type: ignore[operator]
        "input": data.spec.input_meta(**inp_extra),
        "grid": {"resolution": resolution, "resolution_source": res_source,
                 "epsg": (manifest.get("grid") or {}).get("epsg")},
        "normalization": data.spec.normalization(),
        "normalization_source": "init package" if init.meta is not None else "training data",
        "classes": [{"id": c["id"], "name": c["name"], "colour": c["colour"]} for c in data.classes],
        "training": {"epochs": fit.epochs_done, "steps": fit.global_step, "resumed_from_step": fit.resumed_from_step,
                     "batch_size": cfg.batch_size,
                     "optimizer": "AdamW", "lr": args.lr, "encoder_lr": args.encoder_lr or args.lr,
                     "weight_decay": args.weight_decay, "schedule": "warm-up 5% + cosine", "loss": "cross-entropy",
                     "freeze_encoder": bool(args.freeze_encoder),
                     "frozen_fraction": default_frozen_fraction(init, args.frozen_fraction),
                     "class_balance": not args.no_class_balance, "kept_epoch": best,
                     "labels": data.info, "seed": cfg.seed,
                     "device": fit.device.description, "elapsed_s": round(fit.elapsed_s, 1),
                     "samples_per_s": fit.imgs_per_s, "history": fit.history,
                     **({"samples_per_epoch": args.samples_per_epoch} if data.task == "segmentation" else {})},
        "metrics": metrics,
        "provenance": {"data": str(Path(data.store.path).resolve()), "init": init.provenance(),
                       "chain": provenance.extend(init.meta, init.path, provenance.step(
                           "finetune", task=data.task, data=str(Path(data.store.path).resolve()),
                           init=str(init.path.resolve()) if init.path else "random", init_sha256=init.sha256,
                           architecture=f"{net.describe()['encoder']} + {net.describe()['decoder']}",  # type: ignore[operator]
                           label_fraction=data.info.get("label_fraction"), steps=fit.global_step)),
                       "inputs": [s.get("files") for sensor in (manifest.get("sensors") or {}).values()
                                  for s in sensor.get("scenes", [])] or (manifest.get("provenance") or {}).get(
                                      "inputs"),
                       "aoi": (manifest.get("aoi") or {}).get("source"), "poi": manifest.get("poi"),
                       "labels": {k: (manifest.get("labels") or {}).get(k) for k in ("source", "class_field")},
                       "command": list(sys.argv)},
    }
    return meta

