"""Encoders (timm), segmentation models, temporal networks, and the model package format."""

import torch
from torch import nn


def to_channels_last(module: nn.Module) -> nn.Module:
    """``module`` in the channels_last layout (faster convolutions on GPUs and with oneDNN), unless it holds 5-D
    weights (Conv3d of the temporal U-Net): channels_last is defined for 4-D tensors only and would raise there."""
    if any(p.dim() == 5 for p in module.parameters()):
        return module
    return module.to(memory_format=torch.channels_last)


def float32_of(x: torch.Tensor, unsigned: bool = False) -> torch.Tensor:
    """``x`` as a new float32 tensor in ``x``'s memory layout. uint16 values (Sentinel-2 as stored) cross to a GPU
    viewed as int16 (``unsigned``: same bits), because CUDA implements few operations on uint16; they are put back in
    0..65535 after the conversion. On the CPU uint16 converts directly."""
    if x.dtype == torch.uint16 and x.device.type != "cpu":
        x, unsigned = x.view(torch.int16), True
    if unsigned and x.device.type == "cpu":
        return x.view(torch.uint16).to(torch.float32)
    out = x.to(torch.float32)
    return out.remainder_(65536.0) if unsigned else out
