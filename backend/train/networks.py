"""The network a package's ``architecture`` describes, without weights: one factory for ``finetune`` (a new model)
and ``predict`` / ``evaluate`` (a package read back), so a model is always rebuilt the way it was trained.

It sits in ``train/``, above ``models/`` and ``pixel/``, because it builds every family, the pixel classifier
(:mod:`backend.pixel.model`) included."""

from __future__ import annotations

from typing import Any

from torch import nn

from backend.errors import EoSslError


def create_network(task: str, architecture: dict[str, Any], in_chans: int, num_classes: int, *,
                   per_band: bool = False) -> nn.Module:
    """``architecture`` is ``model.json``'s: ``family`` (``timm``/``smp``, ``unet3d``: a dense-moco backbone, ``pixel``:
    :mod:`backend.pixel`), ``encoder`` and ``decoder`` (segmentation: unet, deeplabv3plus...; classification: the
    head, linear or mlp)."""
    family = architecture.get("family")
    if family == "pixel":  # a per-pixel classifier: features + head, all tensors
        from backend.pixel.model import PixelClassifier

        return PixelClassifier.from_architecture(architecture)
    if family == "unet3d":
        if task != "segmentation":
            raise EoSslError("bad_argument", "A dense-moco backbone is fine-tuned for segmentation.",
                             "Use --task segmentation on a cube with parcels.")
        from backend.models.unet3d import TemporalSegmenter

        return TemporalSegmenter.from_architecture(architecture, in_chans, num_classes)
    decoder = architecture.get("decoder")
    if task == "segmentation":
        from backend.models.segmentation import SegmentationNet

        return SegmentationNet(architecture["encoder"], in_chans, num_classes, decoder or "unet", per_band=per_band)
    from backend.models.classifier import ClassifierNet

    return ClassifierNet(architecture["encoder"], in_chans, num_classes, decoder or "linear", per_band=per_band)


#: the output stride of the timm encoders (ResNets, EfficientNets, ConvNeXts...) that smp's decoders upsample from
ENCODER_STRIDE = 32


def tile_multiple(architecture: dict[str, Any]) -> int:
    """The number a dense model's input side must be a multiple of: the encoder's output stride for a 2D network,
    ``2 ** depth`` for a U-Net-3D (it pools space ``depth`` times), 1 for a pixel classifier (each pixel alone)."""
    family = architecture.get("family")
    if family == "pixel":
        return 1
    if family == "unet3d":
        return 2 ** int(architecture.get("depth", 3))
    return ENCODER_STRIDE


def check_tile(tile: int, architecture: dict[str, Any], task: str) -> None:
    """Refuse a ``--tile`` that the network cannot take (segmentation: a multiple of :func:`tile_multiple`)."""
    m = tile_multiple(architecture) if task == "segmentation" else 1
    if tile < m or tile % m:
        family = architecture.get("family") or "timm"
        raise EoSslError("bad_argument", f"--tile {tile} is not a multiple of {m}, as this {family} model needs.",
                         f"Use e.g. --tile {max(256 // m * m, m)}.")
