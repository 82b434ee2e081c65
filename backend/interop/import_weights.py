"""``eo-ssl import-weights``: a published encoder (``.pth``/``.pt`` state dict or safetensors) -> an eo-ssl package.

    eo-ssl import-weights FILE --encoder resnet50 [--bands B01,...,B12] [--normalisation PRESET|FILE]
                          [--prefix KEY.PREFIX.] [--source URL] [--resolution 10] --out MODEL_DIR [--overwrite]

The file is read without running code and its tensors are checked against a real timm model of the encoder and
band count (:mod:`backend.models.state_dicts`). The package is a ``pretrain`` package like the ones ``eo-ssl
pretrain`` writes (method ``imported``): ``encoder.*`` weights with timm's names, the input bands in the encoder's
order, the normalisation on raw values (:mod:`backend.interop.presets`), and the file's SHA-256 and source as the
first step of the chain of provenance. It is then used as any package: ``pretrain --init`` to adapt it to the AOI,
``finetune --init``, ``evaluate --init``. Nothing is downloaded.

A torchgeo SSL4EO-S12 file is recognised by its SHA-256 (torchgeo's names end with its first 8 hex digits); its band
order, normalisation and URL are then filled in, and an ``--encoder`` or ``--bands`` that contradicts them is refused.

``--encoder presto`` reads Presto's published state dict (nasaharvest/presto ``data/default_model.pt``) into eo-ssl's
own implementation (:mod:`backend.models.presto`): the whole file (encoder and decoder) loads strictly, and the package
keeps the encoder (``encoder.*``, architecture family ``presto``), with Presto's fixed bands and normalisation; the
decoder is dropped (``provenance.imported.decoder_dropped``). ``--bands``, ``--normalisation`` and ``--prefix`` do not
apply to it.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

import torch

from backend import options
from backend.errors import EoSslError
from backend.events import Events
from backend.interop import presets
from backend.models import presto, provenance
from backend.models.inputs import describe
from backend.models.segmentation import timm_name
from backend.models.state_dicts import match_encoder, read_weights_file


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options, declared in :mod:`backend.options`."""
    options.add_arguments(p, "import-weights")


def run(args: argparse.Namespace, events: Events) -> dict[str, Any]:
    from backend.models.encoders import create_encoder
    from backend.models.package import save_package, sha256_of
    from backend.train import model_folder

    path = Path(args.file)
    out = Path(args.out)
    if not path.is_file():
        raise EoSslError("input_not_found", f"Weights file {path} does not exist.", "Check the path.")
    model_folder.check_out(out, False, args.overwrite, options.paths("import-weights", args, "input"))
    sha = sha256_of(path)
    if args.encoder.strip().lower() == "presto":
        return _run_presto(args, events, path, out, sha)
    if sha == presto.PUBLISHED_SHA256:
        raise EoSslError("init_mismatch", f"{path.name} is Presto's published state dict (SHA-256 {sha[:8]}...); "
                         f"--encoder says {args.encoder}.", "Use --encoder presto.")
    known = presets.recognise(sha)
    encoder_name = timm_name(args.encoder)
    if known is not None:
        events.log(f"{path.name} is torchgeo's {known.name} (SHA-256 {sha[:8]}...): {known.encoder}, "
                   f"normalisation {known.preset}")
        if encoder_name != known.encoder:
            raise EoSslError("init_mismatch", f"{path.name} is torchgeo's {known.name}, a {known.encoder}; "
                             f"--encoder says {args.encoder}.", f"Use --encoder {known.encoder}.")
    norm_spec = args.normalisation or (known.preset if known else None)
    if norm_spec is None:
        raise EoSslError("missing_normalisation", "The normalisation the encoder was trained with is needed: "
                         "without it the imported encoder sees numbers it never saw.",
                         f"Give --normalisation with a preset ({', '.join(presets.PRESETS)}) or a JSON file "
                         "(mean, std, scale).")
    if args.bands:
        channels = presets.parse_bands(args.bands)
    elif norm_spec in presets.PRESETS:
        channels = presets.preset_channels(norm_spec)
    else:
        raise EoSslError("bad_argument", "--bands is needed with a normalisation file.",
                         "Name the bands the encoder reads, in its order.")
    if known is not None and channels != presets.preset_channels(known.preset):
        raise EoSslError("init_mismatch", f"{known.name} reads {describe(presets.preset_channels(known.preset))}, "
                         f"in that order; --bands says {describe(channels)}.", "Leave --bands out.")
    normalization, norm_source = presets.read_normalisation(norm_spec, channels)

    flat, fmt = read_weights_file(path)
    encoder = create_encoder(encoder_name, len(channels))
    first_conv = (getattr(encoder, "pretrained_cfg", None) or {}).get("first_conv")
    found = match_encoder(flat, encoder, what=path.name, prefix=args.prefix, first_conv=first_conv,
                          bands=len(channels))
    encoder.load_state_dict(found.state, strict=True)
    events.log(f"{path.name} ({fmt}): {found.describe()}")
    if found.other_prefixes:
        events.log(f"also fitting, not used: {', '.join(found.other_prefixes)} (choose with --prefix)")
    with torch.no_grad():  # a forward pass on the normalised zero image: the weights run and give finite features
        features = encoder.eval()(torch.zeros(1, len(channels), 64, 64))
    if not bool(torch.isfinite(features).all()):
        raise EoSslError("corrupt_weights", f"{path.name} gives non-finite features (NaN or inf weights).",
                         "Download the file again.")
    source = args.source or (known.url if known else None)
    imported = {"file": str(path.resolve()), "file_name": path.name, "sha256": sha, "bytes": path.stat().st_size,
                "format": fmt, "source": source, "torchgeo_weights": known.name if known else None,
                "key_prefix": found.prefix, "tensors": len(found.state), "unused_tensors": len(found.unused),
                "unused_examples": found.unused[:8], "other_prefixes": found.other_prefixes}
    meta = {
        "task": "pretrain", "method": "imported", "variant": None,
        "architecture": {"family": "timm", "encoder": encoder_name, "in_chans": len(channels),
                         "num_features": int(encoder.num_features), "decoder": None, "num_classes": None},
        "input": {"channels": [[s, b] for s, b in channels], "channel_mode": "stack", "crop": None,
                  "dates": "single", "time_steps": 1},
        "grid": {"resolution": float(args.resolution)},
        "normalization": normalization,
        "normalization_source": norm_source,
        "classes": [],
        "training": {},
        "metrics": {},
        "provenance": {"init": "imported", "imported": imported,
                       "chain": [provenance.step("import", file=str(path.resolve()), sha256=sha, source=source,
                                                 encoder=encoder_name, bands=[b for _, b in channels],
                                                 torchgeo_weights=known.name if known else None)]},
    }
    events.check_cancel()  # the last safe point: a signal after it finds the package complete
    if args.overwrite and out.exists():
        shutil.rmtree(out / "checkpoints", ignore_errors=True)
    save_package(out, {f"encoder.{k}": v for k, v in found.state.items()}, meta)
    events.artifact("model", str(out))
    return {"model": str(out), "encoder": encoder_name, "bands": ",".join(b for _, b in channels),
            "tensors": len(found.state), "key_prefix": found.prefix, "sha256": sha,
            "recognised": known.name if known else None, "normalisation": norm_spec}


def _run_presto(args: argparse.Namespace, events: Events, path: Path, out: Path, sha: str) -> dict[str, Any]:
    """``import-weights FILE --encoder presto``: the published Presto file -> a package of its encoder."""
    from backend.models.package import save_package

    given = [name for name, value in (("--bands", args.bands), ("--normalisation", args.normalisation),
                                      ("--prefix", args.prefix)) if value]
    if given:
        raise EoSslError("bad_argument", f"{', '.join(given)} do not apply to Presto: it reads fixed bands "
                         f"({', '.join(presto.INPUT_BANDS)} and NDVI) with its own normalisation, from its published "
                         "state dict.", f"Leave {', '.join(given)} out.")
    published = sha == presto.PUBLISHED_SHA256
    if published:
        events.log(f"{path.name} is Presto's published state dict (nasaharvest/presto data/default_model.pt, "
                   f"SHA-256 {sha[:8]}...)")
    model, info = presto.read_presto_file(path)
    encoder = model.encoder
    events.log(f"{path.name} ({info['format']}): {info['tensors']} tensors, all used: encoder {info['encoder_tensors']}"
               f" ({info['encoder_parameters']:,} parameters), decoder {info['decoder_tensors']} (dropped)")
    probe = {b: torch.full((2, 12), 1000.0) for b in presto.S2_INPUT} | {"VV": torch.full((2, 12), -10.0),
                                                                         "VH": torch.full((2, 12), -17.0)}
    features = encoder.embed(probe, torch.arange(12), torch.tensor([[50.8, 3.0], [-1.3, 36.8]]))
    if not bool(torch.isfinite(features).all()):
        raise EoSslError("corrupt_weights", f"{path.name} gives non-finite features.", "Download the file again.")
    source = args.source or (presto.PUBLISHED_SOURCE if published else None)
    channels = [["s1", b] for b in presto.S1_INPUT] + [["s2", b] for b in presto.S2_INPUT]
    normalization = {sensor: {b: {"mean": -presto.SHIFT.get(b, 0.0), "std": presto.DIV[b]} for s, b in channels
                              if s == sensor} for sensor in ("s1", "s2")}
    imported = {"file": str(path.resolve()), "file_name": path.name, "sha256": sha, "bytes": path.stat().st_size,
                "format": info["format"], "source": source, "published_presto": published,
                "key_prefix": info["key_prefix"], "tensors": info["tensors"], "unused_tensors": 0,
                "encoder_tensors": info["encoder_tensors"], "decoder_tensors": info["decoder_tensors"],
                "decoder_dropped": True, "encoder_parameters": info["encoder_parameters"],
                "decoder_parameters": info["decoder_parameters"],
                "licence": "MIT (nasaharvest/presto); cite Tseng et al. 2023, arXiv 2304.14065" if published else None}
    meta = {
        "task": "pretrain", "method": "imported", "variant": None,
        "architecture": presto.architecture_of(encoder),
        "input": {"channels": channels, "channel_mode": "presto", "crop": None, "dates": "monthly",
                  "time_steps": encoder.max_sequence_length, "layout": "pixel-time-series",
                  "months": "calendar month of each time step (0 = January)", "derived": {"NDVI": "B04, B08"},
                  "latlon": "pixel centres, WGS84 degrees",
                  "masked": {**presto.NOT_SUPPLIED, "S2 B01, B09, B10": "not Presto inputs"}},
        "grid": {"resolution": float(args.resolution)},
        "normalization": normalization,
        "normalization_source": "Presto: (x + shift) / div: S1 dB (x + 25) / 25, S2 reflectance x 10000 / 10000; "
                                "NDVI from the normalised B04, B08 (nasaharvest/presto, S1_S2_ERA5_SRTM.normalize)",
        "classes": [],
        "training": {},
        "metrics": {},
        "provenance": {"init": "imported", "imported": imported,
                       "chain": [provenance.step("import", file=str(path.resolve()), sha256=sha, source=source,
                                                 encoder="presto", bands=[b for _, b in channels],
                                                 decoder="dropped")]},
    }
    if args.overwrite and out.exists():
        shutil.rmtree(out / "checkpoints", ignore_errors=True)
    save_package(out, {f"encoder.{k}": v for k, v in encoder.state_dict().items()}, meta)
    events.artifact("model", str(out))
    return {"model": str(out), "encoder": "presto", "bands": ",".join(b for _, b in channels),
            "tensors": info["tensors"], "encoder_tensors": info["encoder_tensors"], "decoder_dropped": True,
            "key_prefix": info["key_prefix"], "sha256": sha, "recognised": "presto" if published else None,
            "normalisation": "presto"}
