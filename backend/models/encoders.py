"""Image encoders by name, from timm, with any number of input channels.

A registry rather than an if-chain: any timm model name works (``resnet18``, ``resnet50``, ``convnext_tiny``,
...); :data:`ALIASES` only adds short names. Weights are never downloaded (``pretrained=False``): encoders
start random or from an eo-ssl model package.
"""

from __future__ import annotations

import timm
import torch
from torch import nn

from backend.errors import EoSslError

ALIASES: dict[str, str] = {"r18": "resnet18", "r50": "resnet50"}


def create_encoder(name: str, in_chans: int, **kwargs: object) -> nn.Module:
    """A timm backbone returning pooled features of size ``encoder.num_features`` (no classifier)."""
    arch = ALIASES.get(name, name)
    if arch not in timm.list_models():
        raise EoSslError("unknown_encoder", f"Unknown encoder {name!r}.",
                         "Use a timm model name such as resnet18 or resnet50.")
    return timm.create_model(arch, pretrained=False, in_chans=in_chans, num_classes=0, **kwargs)


@torch.no_grad()
def embed(encoder: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Pooled features of a (N, C, H, W) tensor, in batches, on the encoder's device; returned on the CPU."""
    device = next(encoder.parameters()).device
    was_training = encoder.training
    encoder.eval()
    out = [encoder(x[i:i + batch_size].to(device, non_blocking=True)).float().cpu()
           for i in range(0, len(x), batch_size)]
    encoder.train(was_training)
    return torch.cat(out) if out else torch.empty(0)
