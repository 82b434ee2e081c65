"""``eo-ssl pretrain --method ts-byol|ts-barlow``: a pixel time-series encoder, self-supervised on the area's pixels.

Called by :mod:`backend.train.pretrain` for the methods of ``level`` ``series`` (:mod:`backend.ssl.series`), after
its shared checks; shares its options, the training loop (:mod:`backend.train.runner`: events, checkpoints,
``--resume``, devices, DDP), the collapse monitor and the package format. The data are every observed pixel of the
stores on the first store's season calendar (:mod:`backend.ssl.pixel_series`; ``--set period=month|Nd``,
``--set season=MM-DD/MM-DD``, ``--bands`` any S2 and S1 names). ``--crop``, ``--sensors`` and ``--variant`` do not
apply (a sample is a pixel; every sensor of the store is read unless ``--bands`` leaves it out); ``--encoder`` is
refused (the size of the series transformer is ``--set width/depth/heads/mlp_ratio/dim``).

The package: ``encoder.*`` (the :class:`backend.models.series_encoder.SeriesEncoder`, its normalisation buffers
included), ``model.json`` with ``architecture.family: "series"``, ``input`` (channels, calendar, months),
``normalization`` (pooled over the stores), training, collapse and provenance, read back by
:func:`backend.models.series_encoder.load_series_package`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from backend.errors import EoSslError
from backend.events import Events
from backend.models import provenance
from backend.train import pretrain_steps, runner

DEFAULT_EPOCHS = 10
#: what a resumed run must share with the run it continues
RESUME_KEYS = ("method", "channels", "calendar", "architecture", "batch_size", "data")


def _load_init(module: Any, path: str) -> dict[str, Any]:
    """Start the encoder (and its momentum copy) from a series package of the same architecture and channels; the
    package's normalisation is kept."""
    from backend.models.package import read_meta
    from backend.models.series_encoder import load_series_package

    meta = read_meta(path)
    if (meta.get("architecture") or {}).get("family") != "series":
        raise EoSslError("init_mismatch", f"--init {path} holds a {(meta.get('architecture') or {}).get('family')} "
                         f"model ({meta.get('method')}); {module.name} continues a pixel time-series encoder only.",
                         "Use a package of eo-ssl pretrain --method ts-byol or ts-barlow, or leave --init out.")
    init = load_series_package(path)
    mine, theirs = module.encoder.architecture(), init.architecture()
    differ = [f"{k} {theirs[k]} (this run: {mine[k]})" for k in mine
              if k not in ("sensors", "num_features") and mine[k] != theirs[k]]
    if init.channels != module.encoder.channels:
        differ.append(f"channels {init.channels} (this run: {module.encoder.channels})")
    if differ:
        raise EoSslError("init_mismatch", f"--init {path} does not fit this run: {'; '.join(differ)}.",
                         "Use the package's --set width/depth/heads/mlp_ratio/dim and stores with its bands.")
    # the package's normalisation too: its weights were learnt on values normalised so (the encoder reads raw values)
    module.encoder.load_state_dict(init.state_dict(), strict=True)
    module.config.update(mean=init.mean.tolist(), std=init.std.tolist())
    twin = getattr(module, "encoder_momentum", None)
    if twin is not None:
        twin.load_state_dict(module.encoder.state_dict())
    return meta


def run_series(args: argparse.Namespace, events: Events, cls: type, sets: dict[str, Any]) -> dict[str, Any]:
    """A series method (``cls`` from :mod:`backend.ssl.registry`) after :func:`backend.train.pretrain.run`'s checks."""
    import lightning.pytorch as pl

    from backend.models.package import WEIGHTS, sha256_of
    from backend.ssl.base import COMMON_DEFAULTS
    from backend.ssl.pixel_series import build_series_data

    if args.encoder:
        raise EoSslError("bad_argument", f"--encoder {args.encoder}: {args.method} trains its own pixel time-series "
                         "transformer.", "Leave --encoder out; size it with --set width=..., depth=..., dim=....")
    main = runner.is_main_process()
    out = Path(args.out)
    config: dict[str, Any] = {**COMMON_DEFAULTS, **cls.DEFAULTS, **sets}
    defaults = {"epochs": DEFAULT_EPOCHS, "batch_size": config["batch_size"]}
    if args.max_steps is not None and args.epochs is None:
        defaults["epochs"] = None  # --max-steps alone: as many epochs as it takes
    cfg = runner.TrainConfig.from_args(args, **defaults)
    runner.apply_threads(cfg)
    device = runner.resolve_device(cfg.devices, cfg.strategy, cfg.precision, cfg.num_nodes)
    bands = [b.strip() for b in args.bands.split(",") if b.strip()] if args.bands else None
    data = build_series_data(args.data, period=str(config["period"]), season=config["season"], bands=bands,
                             epoch_length=args.epoch_length, seed=cfg.seed, method=args.method)
    config.update({"channels": [list(c) for c in data.channels], "batch_size": cfg.batch_size,
                   "world_size": device.world_size, "calendar": data.calendar(), "months": data.months,
                   "periods": data.input.calendar.labels(data.input.year) if data.input.calendar else [],
                   "mean": [data.normalization[s][b]["mean"] for s, b in data.channels],
                   "std": [data.normalization[s][b]["std"] for s, b in data.channels]})
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    module = cls(config)
    config = module.config
    architecture = module.encoder.architecture()
    init_meta = _load_init(module, args.init) if args.init else None
    run_config = {"method": args.method, "channels": config["channels"], "calendar": config["calendar"],
                  "architecture": architecture, "batch_size": cfg.batch_size,
                  "data": [str(Path(p).resolve()) for p in args.data], "config": config, "train": cfg.to_dict()}

    pretrain_steps.watch_collapse(module, events, args.method)
    n_params = sum(p.numel() for p in module.encoder.parameters())
    if main:
        assert data.input.calendar is not None
        events.log(f"{args.method}: series transformer (width {architecture['width']}, depth {architecture['depth']}, "
                   f"{architecture['dim']} features, {n_params:,} parameters) over {len(data.channels)} channels "
                   f"({', '.join(f'{s}:{b}' for s, b in data.channels)}) on {data.input.calendar.describe()}; "
                   f"{sum(data.lengths)} observed pixels in {len(data.stores)} store(s)"
                   + (f", {len(data.dataset)} per epoch" if args.epoch_length else ""))
    judged = pretrain_steps.fit_and_judge(module, data.dataset, cfg, device, out, run_config, RESUME_KEYS, args,
                                          events, "Use a smaller --batch-size.", "pixels")
    if judged is None:
        return {}

    # -- the package ----------------------------------------------------------------------------------------------
    result, collapse = judged
    training = {
        **pretrain_steps.training_record(result, cfg, device),
        "optimizer": {"adamw": "AdamW", "sgd": "SGD"}.get(config["optimizer"]),
        "lr": module.learning_rate(), "weight_decay": config["weight_decay"], "schedule": config["schedule"],
        "seed": cfg.seed, "samples_per_epoch": len(data.dataset), "encoder_parameters": n_params,
        "resumed_from_step": result.resumed_from_step, "elapsed_s": round(result.elapsed_s, 1),
        "pixels_per_s": None if result.imgs_per_s is None else round(result.imgs_per_s, 1),
        "method_config": config, **module.describe(),
    }
    init = str(Path(args.init).resolve()) if args.init else "random"
    meta = {
        "task": "pretrain", "method": args.method, "variant": None,
        "architecture": architecture,
        "input": module.input_spec(),
        "grid": {"resolution": data.grid_resolution() or 10.0},
        "normalization": module.encoder.normalization(),
        "classes": [],
        "training": training,
        "metrics": {"final_loss": result.final_loss, "history": result.history},
        "collapse": collapse,
        "provenance": {**data.provenance(), "init": init,
                       "chain": provenance.extend(init_meta, args.init, provenance.step(
                           "pretrain", method=args.method, data=[str(Path(p).resolve()) for p in args.data],
                           init=init, init_sha256=sha256_of(Path(args.init) / WEIGHTS) if args.init else None,
                           steps=result.global_step))},
    }
    pretrain_steps.write(out, module.encoder_state_dict(), meta, events, result.history, args.method)
    summary: dict[str, Any] = {"model": str(out), "method": args.method, "steps": result.global_step,
                               "final_loss": None if result.final_loss is None else round(result.final_loss, 4),
                               "device": device.description, "pixels_per_s": training["pixels_per_s"]}
    return pretrain_steps.collapse_lines(summary, collapse)
