"""Where an encoder's starting weights come from (``--init`` of ``finetune``, ``evaluate`` and ``compare``): ``random``
(the encoder at random initialisation), ``none`` (no encoder), a model package (its ``encoder.`` weights, or the
``temporal.`` backbone of a dense-moco package) or a ``.safetensors`` file of encoder weights. What a package says of
itself goes into the new model's ``provenance.init``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from backend.errors import EoSslError
from backend.models.package import load_weights, read_meta, sha256_of, weights_under

DEFAULT_ENCODER = "resnet18"


# -- one source -----------------------------------------------------------------------------------------------
@dataclass
class InitSource:
    """Where the encoder's weights come from (``model.json`` ``provenance.init``)."""

    kind: str  # random | package | file
    encoder: str
    path: Path | None = None
    meta: dict[str, Any] | None = None
    encoder_state: dict[str, torch.Tensor] | None = None
    sha256: str | None = None

    @property
    def label(self) -> str:
        if self.kind == "random":
            return f"random ({self.encoder})"
        if self.kind == "none":
            return "none"
        if self.meta is not None:
            return f"{self.meta.get('method') or self.meta.get('task')} ({self.path.name if self.path else ''})"
        return str(self.path)

    def provenance(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "encoder": self.encoder}
        if self.path is not None:
            out.update(path=str(self.path.resolve()), weights_sha256=self.sha256)
        if self.meta is not None:
            out.update({k: self.meta.get(k) for k in ("task", "method", "variant", "created", "code_version")})
            out["data"] = (self.meta.get("provenance") or {}).get("data")
        return out


def _package_part(path: Path, prefix: str, what: str, hint: str) -> tuple[dict[str, torch.Tensor], str]:
    """The weights under ``prefix`` of a package (prefix removed), and the SHA-256 of its weights file."""
    weights = path / "weights.safetensors"
    part = weights_under(load_weights(weights), prefix)
    if not part:
        raise EoSslError("corrupt_model", f"{path} holds no {what} weights (no '{prefix}' keys).", hint)
    return part, sha256_of(weights)


def load_init(init: str, encoder: str | None, warn: Any = None) -> InitSource:
    """Read ``--init``: ``random``, a package folder, or a ``.safetensors`` file of encoder weights."""
    if init in ("random", "", None):
        return InitSource("random", encoder or DEFAULT_ENCODER)
    if init == "none":
        return InitSource("none", encoder or DEFAULT_ENCODER)
    path = Path(init)
    if path.is_dir():
        meta = read_meta(path)
        arch = meta.get("architecture") or {}
        family = arch.get("family", "timm")
        if family == "unet3d":  # a dense-moco (or fine-tuned) per-pixel backbone: keys temporal.*
            enc, sha = _package_part(path, "temporal.", "backbone",
                                     "Use a package written by eo-ssl pretrain --method dense-moco.")
            return InitSource("package", str(arch.get("backbone", "unet3d")), path, meta, enc, sha)
        if family in ("presto", "series"):  # a pixel time-series encoder: the pixel classifiers' embedding
            enc, sha = _package_part(path, "encoder.", "encoder", "Use the package as eo-ssl wrote it.")
            return InitSource("package", family, path, meta, enc, sha)
        if family not in ("timm", "smp"):
            raise EoSslError("unsupported_model", f"{path} holds a {family} model ({meta.get('method')}); fine-tuning "
                             "takes timm encoders or dense-moco backbones.",
                             "Initialise from a package of eo-ssl pretrain.")
        name = str(arch.get("encoder") or DEFAULT_ENCODER)
        if encoder and encoder != name and warn is not None:
            warn("encoder_ignored", f"--encoder {encoder} ignored: the package {path} holds a {name}.")
        enc, sha = _package_part(path, "encoder.", "encoder", "Use a package written by eo-ssl pretrain or finetune.")
        return InitSource("package", name, path, meta, enc, sha)
    if path.is_file():
        state = load_weights(path)
        enc = weights_under(state, "encoder.") or dict(state)
        return InitSource("file", encoder or DEFAULT_ENCODER, path, None, enc, sha256_of(path))
    raise EoSslError("input_not_found", f"--init {init}: no such model package or weights file.",
                     "Give a folder written by eo-ssl pretrain/finetune, a .safetensors file, or 'random'.")


def load_inits(names: Iterable[str], encoder: str | None, warn: Any = None) -> list[InitSource]:
    """Several ``--init`` values (``evaluate``, ``compare``): ``random`` takes the encoder of ``--encoder``, else of the
    first package, else :data:`DEFAULT_ENCODER`, so that it is the baseline of the same network."""
    names = list(names)
    packages = [load_init(i, encoder, warn) for i in names if i != "random"]
    default_encoder = encoder or (packages[0].encoder if packages else DEFAULT_ENCODER)
    return [load_init(i, default_encoder, warn) if i == "random" else packages.pop(0) for i in names]
