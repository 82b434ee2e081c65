"""Encoders (timm), segmentation models, temporal networks, and the model package format."""

from torch import nn


def to_channels_last(module: nn.Module) -> nn.Module:
    """``module`` in the channels_last layout (faster convolutions on GPUs and with oneDNN), unless it holds 5-D
    weights (Conv3d of the temporal U-Net): channels_last is defined for 4-D tensors only and would raise there."""
    import torch

    if any(p.dim() == 5 for p in module.parameters()):
        return module
    return module.to(memory_format=torch.channels_last)
