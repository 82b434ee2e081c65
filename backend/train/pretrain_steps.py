"""The steps every pre-training runner shares (image methods: :mod:`backend.train.pretrain`; dense-moco:
:mod:`backend.train.pretrain_dense`; pixel time-series methods: :mod:`backend.train.pretrain_series`): the collapse
warning while training, the loader and the fit in the run's folder, the collapse verdict at the end, the package with
its curves, and the summary's collapse lines. One home, so that the three runners differ only in their data, module
and ``model.json``.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from backend.errors import EoSslError
from backend.events import Events
from backend.train import model_folder, runner

#: the training curves of a pre-training package (history key, label)
CURVES = [("loss", "loss"), ("lr", "learning rate"),
          ("collapse/std_ratio", "embedding std x sqrt(d) (~1 healthy, <0.1 collapsed)"),
          ("collapse/effective_rank", "effective rank")]


def watch_collapse(module: Any, events: Events, method: str) -> None:
    """Warn (rank 0) in the epoch the module's collapse monitor sees a collapse."""

    def warn(stats: dict[str, float]) -> None:
        if module.trainer.is_global_zero:
            events.warning("collapse", f"{method}: the embeddings collapsed in epoch {module.current_epoch + 1} "
                           f"(std of normalised projections x sqrt(d) = {stats['collapse/std_ratio']:.3f}, healthy "
                           f"~1; effective rank {stats['collapse/effective_rank']:.1f}). The encoder may be "
                           "useless; try a lower learning rate, a larger batch or another method.")

    module.on_collapse = warn


def fit(module: Any, dataset: Any, cfg: Any, device: Any, out: Path, run_config: dict[str, Any],
        resume_keys: tuple[str, ...], args: argparse.Namespace, events: Events, hint: str) -> Any | None:
    """The loader, the run's folder (it appears only now that the inputs are known to be good) and
    :func:`backend.train.runner.fit`; None on a rank other than 0 (it writes nothing)."""
    loader = runner.make_loader(dataset, cfg, device)
    if len(loader) == 0:
        raise EoSslError("no_samples", f"{len(dataset)} samples make no full batch of {cfg.batch_size}.", hint)
    if runner.is_main_process():
        model_folder.begin(out, run_config, resume_keys, resume=args.resume, overwrite=args.overwrite)
    result = runner.fit(module, loader, cfg, out, events, device=device, stage="pretrain")
    return result if result.is_global_zero else None


def fit_and_judge(module: Any, dataset: Any, cfg: Any, device: Any, out: Path, run_config: dict[str, Any],
                  resume_keys: tuple[str, ...], args: argparse.Namespace, events: Events, hint: str,
                  unit: str) -> tuple[Any, dict[str, Any]] | None:
    """:func:`fit`, then the collapse verdict of the run (:func:`final_collapse` of its ``unit``, the module's
    ``collapse_threshold``): (result, collapse), or None on a rank other than 0."""
    result = fit(module, dataset, cfg, device, out, run_config, resume_keys, args, events, hint)
    if result is None:
        return None
    return result, final_collapse(result.history, module.config["collapse_threshold"], unit, events, args.method)


def final_collapse(history: list[dict[str, Any]], threshold: float, unit: str, events: Events,
                   method: str) -> dict[str, Any]:
    """``model.json``'s ``collapse`` (:func:`backend.ssl.collapse.collapse_summary`) of the monitor's last <=1024
    ``unit`` (samples, pixels) of each epoch, with a warning when the run ends dimensionally collapsed."""
    from backend.ssl.collapse import collapse_summary

    collapse = collapse_summary(history, threshold, f"L2-normalised projections of the last <=1024 {unit} of each "
                                "epoch (encoder features too)")
    if collapse["dimensional_collapse"] and not collapse["collapsed"]:
        events.warning("dimensional_collapse", f"{method}: the embeddings use few of their directions (effective "
                       f"rank {collapse['effective_rank']:.1f}, {collapse['rank_fraction']:.1%} of what the "
                       "samples allow). Probe the encoder before relying on it; try a lower learning rate, a larger "
                       "batch or another method.")
    return collapse


def training_record(result: Any, cfg: Any, device: Any) -> dict[str, Any]:
    """The first entries of a pre-training package's ``training``: how long it ran (epochs, steps, the limits,
    the batch) and where (world size, devices, accelerator, precision, strategy)."""
    return {"epochs": len(result.history), "steps": result.global_step, "max_steps": cfg.max_steps,
            "max_epochs": cfg.epochs, "batch_size": cfg.batch_size, "world_size": device.world_size,
            "devices": str(device.devices), "accelerator": device.accelerator, "precision": device.precision,
            "strategy": str(device.strategy)}


def write(out: Path, state: dict[str, Any], meta: dict[str, Any], events: Events, history: list[dict[str, Any]],
          title: str, curves: list[tuple[str, str]] | None = None) -> None:
    """The package, once, with its training curves."""
    model_folder.write_package(out, state, meta, events, history=history, curves=curves or CURVES, title=title)


def collapse_lines(summary: dict[str, Any], collapse: dict[str, Any]) -> dict[str, Any]:
    """The summary's collapse entries (std ratio, effective rank, the verdict)."""
    if collapse["std_ratio"] is not None and math.isfinite(collapse["std_ratio"]):
        summary["embedding_std_ratio"] = round(collapse["std_ratio"], 3)
        summary["effective_rank"] = round(collapse["effective_rank"], 1)
    if collapse["collapsed"]:
        summary["collapse"] = (f"COLLAPSED (epoch(s) {collapse['collapsed_epochs']}): the embeddings carry almost "
                               "no information")
    elif collapse["collapsed_epochs"]:
        summary["collapse"] = f"collapsed in epoch(s) {collapse['collapsed_epochs']}, recovered by the end"
    elif collapse["dimensional_collapse"]:
        summary["collapse"] = (f"dimensional collapse: effective rank {collapse['effective_rank']:.1f}, "
                               f"{collapse['rank_fraction']:.1%} of the directions it could use")
    return summary
