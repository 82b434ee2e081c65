"""``eo-ssl pretrain``: self-supervised pre-training of an encoder on one or several chip stores.

    eo-ssl pretrain --data STORE [STORE ...] --method rs-byol|byol|moco-v2|simsiam|barlow-twins|swav|dense-moco|
                                                      ts-byol|ts-barlow
                    [--variant single|three|s2-only|rgb-s1s2] [--encoder resnet18|resnet50|...]
                    [--epochs N | --max-steps N] [--batch-size B] [--crop 64] [--devices auto|cpu|N]
                    [--num-nodes N] [--precision 16-mixed|32] [--resume] --out MODEL_DIR [--events]

Writes a model package (``backend.models.package``): ``weights.safetensors`` with the encoder (prefix
``encoder.``), ``model.json`` (method, variant, encoder, input channels in order, channel mode, crop, normalisation
from the stores' statistics, training configuration, final loss, collapse numbers, provenance) and
``training_curves.png``; resumable checkpoints in ``MODEL_DIR/checkpoints/``. The training loop is
:mod:`backend.train.runner`'s; the methods are :mod:`backend.ssl.registry`'s.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from backend import options
from backend.data.bands import S1_BANDS
from backend.errors import EoSslError
from backend.events import Events
from backend.models import provenance
from backend.models.inputs import describe
from backend.models.package import weights_under
from backend.train import model_folder, pretrain_steps, runner

METHOD_NAMES = options.METHODS
VARIANTS = options.VARIANTS
DEFAULT_EPOCHS = 10
#: options a resumed run must share with the run it continues
RESUME_KEYS = ("method", "variant", "encoder", "bands", "sensors", "crop", "batch_size", "data")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options, declared in :mod:`backend.options`."""
    options.add_arguments(parser, "pretrain")


def method_config(args: argparse.Namespace, cls: type, sets: dict[str, Any], bands: dict[str, list[str]],
                  sensors: list[str], batch_size: int, world_size: int) -> dict[str, Any]:
    """The method's configuration: its defaults, then ``sets`` (``--set``, ``--lr``...: :func:`run`), then the
    encoder, variant and data."""
    from backend.ssl.base import COMMON_DEFAULTS

    cfg: dict[str, Any] = {**COMMON_DEFAULTS, **cls.DEFAULTS, **sets}
    if args.encoder:
        cfg["encoder"] = args.encoder
    if args.method == "rs-byol":
        cfg["variant"] = args.variant  # resolved from auto by run_image
    cfg.update({"bands": bands, "sensors": sensors, "crop": int(args.crop), "batch_size": int(batch_size),
                "world_size": int(world_size)})
    return cfg


def auto_variant(stores: list[str], events: Events | None) -> str:
    """``--variant auto`` of rs-byol: ``single`` when every store has Sentinel-1 (and Sentinel-2), else ``s2-only``
    (as the QGIS plugin chooses); logged. A store that cannot be read is left to the data's own checks."""
    from backend.data.chipstore import ChipStore

    without = []
    for path in stores:
        try:
            if "s1" not in ChipStore(path).sensors:
                without.append(str(path))
        except EoSslError:
            return "single"  # the data's checks then say what is wrong with the store
    variant = "s2-only" if without else "single"
    if events is not None:
        events.log(f"rs-byol --variant auto: {variant} ("
                   + (f"no Sentinel-1 in {', '.join(without)}" if without else "every store has Sentinel-1 and "
                      "Sentinel-2") + ")")
    return variant


def _load_init(module: Any, meta: dict[str, Any], weights: dict[str, Any], path: str) -> None:
    """Copy a package's ``encoder.*`` weights into the module's encoder (same architecture and input channels)."""
    arch = meta.get("architecture", {})
    if arch.get("encoder") != module.config["encoder"] or int(arch.get("in_chans", -1)) != module.in_chans():
        raise EoSslError("init_mismatch", f"--init {path} holds a {arch.get('encoder')} encoder reading "
                         f"{arch.get('in_chans')} channel(s); this run needs {module.config['encoder']} with "
                         f"{module.in_chans()}.", "Use a package of the same encoder and bands, or leave --init out.")
    spec = module.input_spec()
    want = [tuple(c) for c in (meta.get("input") or {}).get("channels", [])]
    have = [tuple(c) for c in spec["channels"]]
    if spec["channel_mode"] == "stack" and want and want != have:
        raise EoSslError("init_mismatch", f"--init {path} reads {describe(want)} (in this order); this run feeds "
                         f"{describe(have)}.", "Pre-train on stores that have the package's bands, and leave --bands "
                         "out (the package's bands are used).")
    state = weights_under(weights, "encoder.")
    missing, unexpected = module.encoder.load_state_dict(state, strict=False)
    if missing or unexpected or not state:
        raise EoSslError("init_mismatch", f"--init {path}: encoder weights do not fit ({len(missing)} missing, "
                         f"{len(unexpected)} unexpected).", "Use a package written by `eo-ssl pretrain`.")
    for target in ("encoder_momentum",):  # the teacher starts as the student, as in a fresh run
        twin = getattr(module, target, None)
        if twin is not None:
            twin.load_state_dict(module.encoder.state_dict())


def init_bands(meta: dict[str, Any], args: argparse.Namespace, path: str) -> tuple[list[str], str]:
    """The Sentinel-2 bands (in the encoder's order) and ``--sensors`` of a stacked-band run from ``--init``: the
    data are matched to the package's channels by name, so a store with the bands in another order still fits."""
    inp = meta.get("input") or {}
    channels = [(str(s), str(b)) for s, b in inp.get("channels", [])]
    if (inp.get("channel_mode") or "stack") != "stack":
        raise EoSslError("init_mismatch", f"--init {path} holds a single-band (per-band) RS-BYOL encoder; "
                         f"{args.method} feeds the bands stacked.",
                         "Continue it with --method rs-byol --variant single or s2-only, or use another package.")
    s2 = [b for s, b in channels if s == "s2"]
    s1 = [b for s, b in channels if s == "s1"]
    if not s2 or (s1 and s1 != list(S1_BANDS)):
        raise EoSslError("init_mismatch", f"--init {path} reads {describe(channels)}; stacked-band pre-training "
                         "reads Sentinel-2 bands, then optionally VV, VH.", "Use another package.")
    if args.bands:
        given = [b.strip().upper() for b in args.bands.split(",") if b.strip()]
        if sorted(given) != sorted(s2):
            raise EoSslError("init_mismatch", f"--init {path} reads {', '.join(s2)}; --bands says "
                             f"{', '.join(given)}.", "Leave --bands out: the package's bands are used.")
    if args.sensors == "s2+s1" and not s1:
        raise EoSslError("init_mismatch", f"--init {path} reads no Sentinel-1 band; --sensors s2+s1 would add two.",
                         "Use --sensors s2.")
    return s2, "s2+s1" if s1 else "s2"


def input_affine(channels: list[tuple[str, str]], data_norm: dict[str, dict[str, dict[str, float]]],
                 init_norm: dict[str, dict[str, dict[str, float]]]) -> dict[str, list[float]]:
    """Per channel ``scale``, ``shift`` taking the stores' standardised values to the ``--init`` package's units.

    The augmentations (brightness in standard deviations, channel drop to the mean) work on standardised bands; the
    encoder of a package reads the numbers its normalisation gives (an SSL4EO-S12 encoder reads reflectance, raw /
    10,000). ``raw = x * s_data + m_data`` so ``(raw - m_init) / s_init = x * s_data / s_init + (m_data - m_init) /
    s_init``."""
    scale, shift = [], []
    for s, b in channels:
        d, i = data_norm[s][b], init_norm[s][b]
        scale.append(float(d["std"]) / float(i["std"]))
        shift.append((float(d["mean"]) - float(i["mean"])) / float(i["std"]))
    return {"scale": scale, "shift": shift}


def run(args: argparse.Namespace, events: Events) -> dict[str, Any]:
    """The checks every method shares, before any work; then the method's own run (by its registry ``level``)."""
    from backend.ssl.registry import get_method
    from backend.train.pretrain_dense import run_dense
    from backend.train.pretrain_series import run_series

    cls = get_method(args.method)
    if args.variant not in (None, "auto") and not cls.VARIANTS:
        raise EoSslError("bad_argument", f"--variant is for rs-byol; {args.method} has no variants.",
                         "Leave --variant out.")
    # unknown keys and keys a named option sets (--set batch_size=8: use --batch-size): before any work
    sets = options.parse_sets(args.set, cls.set_keys(), args.method,
                              options.set_owners("pretrain", cls.set_keys(), momentum="--ema"))
    named = {"lr": args.lr, "weight_decay": args.weight_decay, "momentum": args.ema}
    sets.update({k: v for k, v in named.items() if v is not None})
    if runner.is_main_process():
        model_folder.check_out(args.out, args.resume, args.overwrite, options.paths("pretrain", args, "input"))
    # per-pixel U-Net over time series, a pixel's series: the same loop and package
    runs = {"image": run_image, "pixel": run_dense, "series": run_series}
    return runs[cls.level](args, events, cls, sets)


def run_image(args: argparse.Namespace, events: Events, cls: type, sets: dict[str, Any]) -> dict[str, Any]:
    """An image-level method (:class:`backend.ssl.base.SSLMethod`): an encoder of chips, package prefix
    ``encoder.``."""
    import lightning.pytorch as pl

    from backend.data.pretraining import build_ssl_data
    from backend.models.package import WEIGHTS, load_package, sha256_of
    from backend.ssl.base import COMMON_DEFAULTS

    main = runner.is_main_process()
    out = Path(args.out)
    defaults = {"epochs": DEFAULT_EPOCHS, "batch_size": cls.DEFAULTS.get("batch_size", COMMON_DEFAULTS["batch_size"])}
    if args.max_steps is not None and args.epochs is None:
        defaults["epochs"] = None  # --max-steps alone: as many epochs as it takes
    cfg = runner.TrainConfig.from_args(args, **defaults)
    runner.apply_threads(cfg)
    device = runner.resolve_device(cfg.devices, cfg.strategy, cfg.precision, cfg.num_nodes)

    rs = args.method == "rs-byol"
    if rs and args.variant in (None, "auto"):
        args.variant = auto_variant(args.data, events if main else None)
    init_meta = init_weights = None
    s2_bands = args.bands.split(",") if args.bands else None
    sensors_opt = args.sensors
    if args.init:
        init_meta, init_weights = load_package(args.init)  # refuses pickles and damaged files
        family = (init_meta.get("architecture") or {}).get("family", "timm")
        if family not in ("timm", "smp"):
            raise EoSslError("init_mismatch", f"--init {args.init} holds a {family} model; --method {args.method} "
                             "pre-trains a timm image encoder.", "Initialise from a package of eo-ssl pretrain or "
                             "import-weights with a timm encoder.")
        if not rs:  # the encoder reads the package's bands in its order: the data are matched to them by name
            s2_bands, sensors_opt = init_bands(init_meta, args, args.init)
    probe = {"variant": args.variant if rs else None,
             "sensors": ["s2", "s1"] if sensors_opt == "s2+s1" else ["s2"]}
    need_s1 = cls.needs_s1(probe)
    data = build_ssl_data(
        args.data, need_s1=need_s1, stack_s1=not rs and sensors_opt == "s2+s1", crop=args.crop,
        epoch_length=args.epoch_length, s2_bands=s2_bands,
        required_s2=cls.required_s2(probe["variant"]) if rs else (), events=events if main else None,
        method=f"rs-byol --variant {probe['variant']}" if rs else args.method,
        hint_no_s1="Prepare the store with --s2 ... --s1 ... (the same place), or use --variant s2-only."
        if rs else "")
    sensors = ["s2"] if rs else probe["sensors"]
    config = method_config(args, cls, sets, data.bands, sensors, cfg.batch_size, device.world_size)
    init_norm = None
    if init_meta is not None and not rs:  # standardised views -> the package's units, after the augmentations
        from backend.models.inputs import spec_from_meta

        init_norm = spec_from_meta(init_meta).normalization()
        config["input_affine"] = input_affine([(s, b) for s in sensors for b in data.bands[s]], data.normalization,
                                              init_norm)
    run_config = {"method": args.method, "variant": config.get("variant"), "encoder": config["encoder"],
                  "bands": data.bands, "sensors": sensors, "crop": args.crop, "batch_size": cfg.batch_size,
                  "data": [str(Path(p).resolve()) for p in args.data], "config": config, "train": cfg.to_dict()}

    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    if init_meta is not None:
        want = init_meta.get("architecture", {}).get("encoder")
        if args.encoder is None and want:
            config["encoder"] = want
    module = cls(config)
    config = module.config  # with the common defaults filled in
    if args.init:
        _load_init(module, init_meta or {}, init_weights, args.init)
    pretrain_steps.watch_collapse(module, events, args.method)
    if main and init_meta is not None:
        events.log(f"--init {args.init}: {init_meta.get('method')} {config['encoder']} reading "
                   f"{describe([tuple(c) for c in module.input_spec()['channels']])}"
                   + ("; views are standardised with the stores' statistics for the augmentations, then put in the "
                      "package's normalisation for the encoder" if init_norm is not None else
                      "; rs-byol standardises every band with the stores' statistics (the package's normalisation "
                      "is not carried over)"))
    if main:
        samples = sum(data.lengths)
        events.log(f"{args.method}{' ' + config['variant'] if rs else ''}: encoder {config['encoder']} "
                   f"(in_chans {module.in_chans()}, {module.feat_dim} features), {len(data.stores)} store(s), "
                   f"{samples} samples/epoch of {data.sample_size} px -> views of {args.crop} px, "
                   f"bands {', '.join(b for s in data.bands.values() for b in s)}")
    judged = pretrain_steps.fit_and_judge(module, data.dataset, cfg, device, out, run_config, RESUME_KEYS, args,
                                          events, "Use a smaller --batch-size or a larger --epoch-length.", "samples")
    if judged is None:
        return {}

    # -- the package ----------------------------------------------------------------------------------------------
    result, collapse = judged
    spec = module.input_spec()
    used = {(s, b) for s, b in spec["channels"]}
    normalization = {s: {b: v for b, v in bands.items() if (s, b) in used or rs}
                     for s, bands in (init_norm or data.normalization).items()}
    lr = module.learning_rate()
    training = {
        **pretrain_steps.training_record(result, cfg, device), "optimizer": "SGD",
        "lr": lr, "weight_decay": config["weight_decay"], "sgd_momentum": config["sgd_momentum"],
        "schedule": config["schedule"], "seed": cfg.seed, "samples_per_epoch": sum(data.lengths),
        "crop": args.crop, "sample_size": data.sample_size, "resumed_from_step": result.resumed_from_step,
        "elapsed_s": round(result.elapsed_s, 1), "imgs_per_s": result.imgs_per_s,
        "augmentations": "rs-byol: random resized crop (bicubic), flips, rotation, Gaussian blur, random erasing, "
                         "greyscale (3-channel views)" if rs else
                         "ssl4eo: random resized crop, brightness/contrast, band-mean greyscale, Gaussian blur, "
                         "flips, channel drop",
        "method_config": config, **module.describe(),
    }
    meta = {
        "task": "pretrain", "method": args.method, "variant": config.get("variant") if rs else None,
        "architecture": {"family": "timm", "encoder": config["encoder"], "in_chans": module.in_chans(),
                         "num_features": module.feat_dim, "decoder": None, "num_classes": None},
        "input": spec,
        "grid": {"resolution": data.grid_resolution() or 10.0},
        "normalization": normalization,
        "classes": [],
        "training": training,
        "metrics": {"final_loss": result.final_loss, "history": result.history},
        "collapse": collapse,
        "provenance": {**data.provenance(), "init": str(Path(args.init).resolve()) if args.init else "random",
                       "chain": provenance.extend(init_meta, args.init, provenance.step(
                           "pretrain", method=args.method, variant=config.get("variant") if rs else None,
                           encoder=config["encoder"], data=[str(Path(p).resolve()) for p in args.data],
                           init=str(Path(args.init).resolve()) if args.init else "random",
                           init_sha256=sha256_of(Path(args.init) / WEIGHTS) if args.init else None,
                           steps=result.global_step))},
    }
    pretrain_steps.write(out, module.encoder_state_dict(), meta, events, result.history,
                         f"{args.method}{' ' + str(config.get('variant')) if rs else ''}")
    summary: dict[str, Any] = {"model": str(out), "method": args.method, "steps": result.global_step,
                               "final_loss": None if result.final_loss is None else round(result.final_loss, 4),
                               "device": device.description, "imgs_per_s": None if result.imgs_per_s is None
                               else round(result.imgs_per_s, 1)}
    if rs:
        summary["variant"] = config["variant"]
    return pretrain_steps.collapse_lines(summary, collapse)
