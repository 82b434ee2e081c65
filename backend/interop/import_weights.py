"""``eo-ssl import-weights``: a published encoder (``.pth``/``.pt`` state dict or safetensors) -> an eo-ssl package.

    eo-ssl import-weights FILE --encoder resnet50 [--bands B01,...,B12] [--normalisation PRESET|FILE]
                          [--prefix KEY.PREFIX.] [--source URL] [--resolution 10] --out MODEL_DIR [--overwrite]

The file is read without running code and its tensors are checked against a real timm model of the encoder and
band count (:mod:`backend.interop.state_dicts`). The package is a ``pretrain`` package like the ones ``eo-ssl
pretrain`` writes (method ``imported``): ``encoder.*`` weights with timm's names, the input bands in the encoder's
order, the normalisation on raw values (:mod:`backend.interop.presets`), and the file's SHA-256 and source as the
first step of the chain of provenance. It is then used as any package: ``pretrain --init`` to adapt it to the AOI,
``finetune --init``, ``evaluate --init``. Nothing is downloaded.

A torchgeo SSL4EO-S12 file is recognised by its SHA-256 (torchgeo's names end with its first 8 hex digits); its band
order, normalisation and URL are then filled in, and an ``--encoder`` or ``--bands`` that contradicts them is refused.
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
from backend.interop.state_dicts import match_encoder, read_weights_file
from backend.models import provenance
from backend.models.inputs import describe
from backend.models.segmentation import timm_name


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
