"""Encoders of pre-training packages, and embeddings the way ``model.json`` says the encoder reads its input (for
Python users, tests and benchmarks; the ``embed`` command is :mod:`backend.predict.embed`).

``channel_mode: stack``: the channels in ``input.channels`` order are one input; ``per-band`` (the RS-BYOL
single-channel encoder): each channel goes through the 1-channel encoder on its own and the features are averaged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from backend.errors import EoSslError
from backend.models.encoders import create_encoder, embed
from backend.models.package import load_package, weights_under


def encoder_from_package(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """The timm encoder of a package with its weights (safetensors only), in eval mode, and its ``model.json``."""
    meta, weights = load_package(path)
    arch = meta.get("architecture", {})
    encoder = create_encoder(arch["encoder"], int(arch["in_chans"]))
    state = weights_under(weights, "encoder.")
    if not state:
        raise EoSslError("not_a_model", f"{path} has no encoder weights (keys 'encoder.*').",
                         "Use a package written by `eo-ssl pretrain` or `eo-ssl finetune`.")
    missing, unexpected = encoder.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise EoSslError("corrupt_model", f"{path}: the weights do not fit a {arch['encoder']} encoder "
                         f"({len(missing)} missing, {len(unexpected)} unexpected keys).", "Use another copy.")
    return encoder.eval(), meta


@torch.no_grad()
def embed_input(encoder: nn.Module, x: torch.Tensor, channel_mode: str = "stack",
                batch_size: int = 256) -> torch.Tensor:
    """Features (N, F) of ``x`` (N, C, H, W) whose channels are in the model's ``input.channels`` order."""
    if channel_mode == "per-band":
        n, c = x.shape[:2]
        feats = embed(encoder, x.reshape(n * c, 1, *x.shape[2:]), batch_size=batch_size)
        return feats.reshape(n, c, -1).mean(dim=1)
    return embed(encoder, x, batch_size=batch_size)
