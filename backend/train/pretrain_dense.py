"""``eo-ssl pretrain --method dense-moco``: dense pixel-level MoCo on a Sentinel-2 time-series chip store.

Called by :mod:`backend.train.pretrain` for ``--method dense-moco``; shares its options, the training loop
(:mod:`backend.train.runner`: events, checkpoints, ``--resume``, devices, DDP) and the package format. The
package holds the per-pixel backbone (prefix ``temporal.``; the projection head is dropped), which
``eo-ssl finetune`` turns into a segmentation model with a 1x1 head (:class:`backend.models.unet3d.TemporalSegmenter`).
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path
from typing import Any

from torch.utils.data import ConcatDataset

from backend.data.chipstore import ChipStore
from backend.data.datasets import RandomCropDataset
from backend.errors import EoSslError
from backend.events import Events
from backend.models import provenance
from backend.models.package import weights_under
from backend.models.state_dicts import load_exactly
from backend.train import pretrain_steps, runner

DEFAULT_EPOCHS = 10
DEFAULT_BATCH = 8
RESUME_KEYS = ("method", "bands", "crop", "region", "batch_size", "data", "config")


def _config(args: argparse.Namespace, sets: dict[str, Any], in_channels: int, n_dates: int) -> Any:
    from backend.ssl.dense_moco import DenseMoCoConfig

    cfg: dict[str, Any] = {"in_channels": in_channels, "crop": int(args.crop), **sets}
    config = DenseMoCoConfig(**cfg)
    if config.backbone == "temporal-stack-unet" and not config.time_steps:
        config.time_steps = max(1, round(n_dates * config.time_subset))
    if config.crop % (2**config.depth):
        raise EoSslError("bad_argument", f"--crop {config.crop} is not a multiple of {2**config.depth} "
                         f"(the U-Net depth {config.depth}).", f"Use e.g. --crop {2**config.depth * 4}.")
    return config


def _data(args: argparse.Namespace, region: int) -> tuple[Any, list[ChipStore], list[str], int]:
    stores = [ChipStore(p) for p in args.data]
    for st in stores:
        if st.kind != "cube":
            raise EoSslError("wrong_store_kind", f"dense-moco needs a prepared cube (image grid); {st.path} holds "
                             "chips.", "Prepare the scene(s) with eo-ssl prepare --s2 ... (several dates: --poi).")
    bands = stores[0].bands("s2")
    n_dates = {len(st.dates("s2")) for st in stores}
    if any(st.bands("s2") != bands for st in stores) or len(n_dates) > 1:
        raise EoSslError("stores_differ", "The stores have different bands or numbers of dates.",
                         "Pre-train dense-moco on stores prepared with the same bands and dates.")
    small = min(min(st.shape) for st in stores)
    if region > small:
        raise EoSslError("crop_too_large", f"Views of {args.crop} px need reads of {region} px; the grid is only "
                         f"{small} px.", f"Use a smaller --crop (at most {small * 2 // 3}).")
    length = args.epoch_length or 256
    datasets = [RandomCropDataset(st, size=region, length=length, sensors=["s2"], dates="all", seed=None)
                for st in stores]
    return (datasets[0] if len(datasets) == 1 else ConcatDataset(datasets)), stores, bands, n_dates.pop()


def _load_init(module: Any, path: str, bands: list[str]) -> dict[str, Any]:
    """Start ``module``'s backbone (and its momentum copy) from a dense-moco package of the same architecture."""
    from backend.models.package import load_package

    meta, weights = load_package(path)
    arch = meta.get("architecture") or {}
    if arch.get("family") != "unet3d":
        raise EoSslError("init_mismatch", f"--init {path} holds a {arch.get('family')} {arch.get('encoder')} image "
                         f"encoder ({meta.get('method')}); dense-moco trains a per-pixel U-Net-3D over time series, "
                         "which an image encoder cannot initialise.",
                         "Adapt an image encoder with --method byol, moco-v2, simsiam, barlow-twins or swav; with "
                         "dense-moco, --init takes a dense-moco package.")
    c = module.config
    want = {"backbone": c.backbone, "in_chans": len(bands), "out_channels": c.feature_dim, "base": c.base_width,
            "depth": c.depth}
    differ = [f"{k} {arch.get(k)} (this run: {v})" for k, v in want.items() if arch.get(k) != v]
    channels = [b for s, b in (meta.get("input") or {}).get("channels", []) if s == "s2"]
    if channels != bands:
        differ.append(f"bands {', '.join(channels)} (this run: {', '.join(bands)})")
    if differ:
        raise EoSslError("init_mismatch", f"--init {path} does not fit this run: {'; '.join(differ)}.",
                         "Use the package's options (--set feature_dim=..., base_width=..., depth=...) and stores "
                         "with its bands.")
    state = weights_under(weights, "temporal.")
    load_exactly(module.backbone, state, "init_mismatch", f"--init {path}: backbone weights do not fit",
                 "Use a package written by eo-ssl pretrain --method dense-moco.")
    module.backbone_k.load_state_dict(module.backbone.state_dict())  # the key encoder starts as the query encoder
    return meta


def run_dense(args: argparse.Namespace, events: Events, cls: type, sets: dict[str, Any]) -> dict[str, Any]:
    """dense-moco (``cls``, from :mod:`backend.ssl.registry`) after :func:`backend.train.pretrain.run`'s checks."""
    import lightning.pytorch as pl

    from backend.models.package import WEIGHTS, sha256_of
    from backend.ssl.collapse import collapse_summary

    main = runner.is_main_process()
    out = Path(args.out)
    region = int(round(args.crop * 1.5 / 8)) * 8  # views are two crops of one read with >= 30 % overlap
    dataset, stores, bands, n_dates = _data(args, region)
    config = _config(args, sets, len(bands), n_dates)
    cfg = runner.TrainConfig.from_args(args, epochs=None if args.max_steps else DEFAULT_EPOCHS,
                                       batch_size=DEFAULT_BATCH)
    device = runner.resolve_device(cfg.devices, cfg.strategy, cfg.precision, cfg.num_nodes)
    run_config = {"method": "dense-moco", "bands": {"s2": bands}, "crop": args.crop, "region": region,
                  "batch_size": cfg.batch_size, "data": [str(Path(p).resolve()) for p in args.data],
                  "config": asdict(config), "train": cfg.to_dict()}
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    module = cls(config)
    init_meta = _load_init(module, args.init, bands) if args.init else None
    n_view = module.n_dates(n_dates)
    if main:
        events.log(f"dense-moco: {config.backbone} backbone ({config.feature_dim} features per pixel), "
                   f"{n_dates} date(s) x {len(bands)} bands, views of {n_view} date(s) and {args.crop} px from "
                   f"{region} px reads, {config.positives} positives per sample, queue {config.queue_size}")
    result = pretrain_steps.fit(module, dataset, cfg, device, out, run_config, RESUME_KEYS, args, events,
                                "Use a smaller --batch-size or a larger --epoch-length.")
    if result is None:
        return {}
    collapse = collapse_summary(result.history, module.collapse.threshold,
                                "L2-normalised projections of sampled pixels")
    timing = module.timing
    steps = max(1, timing["steps"])
    normalization = {"s2": {b: stores[0].stats("s2")[b] for b in bands}}
    meta = {
        "task": "pretrain", "method": "dense-moco", "variant": None,
        "architecture": {"family": "unet3d", "backbone": config.backbone, "in_chans": len(bands),
                         "out_channels": config.feature_dim, "base": config.base_width, "depth": config.depth,
                         "use_doy": True, "time_steps": config.time_steps or None, "decoder": None,
                         "num_classes": None},
        "input": {"channels": [["s2", b] for b in bands], "channel_mode": "stack", "crop": args.crop,
                  "dates": "all", "time_steps": n_view},
        "grid": {"resolution": float(stores[0].manifest["grid"]["resolution"])},
        "normalization": normalization, "classes": [],
        "training": {"steps": result.global_step, "epochs": len(result.history), "batch_size": cfg.batch_size,
                     "optimizer": "SGD", "method_config": asdict(config), "region": region,
                     "precision": device.precision, "world_size": device.world_size,
                     "strategy": str(device.strategy), "resumed_from_step": result.resumed_from_step,
                     "elapsed_s": round(result.elapsed_s, 1), "pixels_per_s": None if not result.imgs_per_s else
                     round(result.imgs_per_s * args.crop**2, 1),
                     "share_of_step": {"views_and_correspondence": round(timing["views_s"] / max(timing["step_s"],
                                       1e-9), 4), "queue": round(timing["queue_s"] / max(timing["step_s"], 1e-9), 4)},
                     "mean_step_s": round(timing["step_s"] / steps, 4)},
        "metrics": {"final_loss": result.final_loss, "history": result.history},
        "collapse": collapse,
        "provenance": {"data": [str(Path(p).resolve()) for p in args.data],
                       "init": str(Path(args.init).resolve()) if args.init else "random",
                       "dates": stores[0].dates("s2"),
                       "chain": provenance.extend(init_meta, args.init, provenance.step(
                           "pretrain", method="dense-moco", data=[str(Path(p).resolve()) for p in args.data],
                           init=str(Path(args.init).resolve()) if args.init else "random",
                           init_sha256=sha256_of(Path(args.init) / WEIGHTS) if args.init else None,
                           steps=result.global_step))},
    }
    state = {f"temporal.{k}": v for k, v in module.backbone.state_dict().items()}
    pretrain_steps.write(out, state, meta, events, result.history, "dense-moco",
                         curves=[("loss", "loss"), ("lr", "learning rate"),
                                 ("collapse/std", "embedding std (normalised)")])
    return {"model": str(out), "method": "dense-moco", "steps": result.global_step,
            "final_loss": None if result.final_loss is None else round(result.final_loss, 4),
            "device": device.description,
            "pixels_per_s": meta["training"]["pixels_per_s"],
            "views+correspondence share": meta["training"]["share_of_step"]["views_and_correspondence"],
            "queue share": meta["training"]["share_of_step"]["queue"]}
