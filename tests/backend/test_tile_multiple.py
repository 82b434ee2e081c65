"""The tile side a dense model can take comes from its architecture (one rule for predict, embed and export-onnx):
the encoder's output stride for a 2D network, 2^depth for a U-Net-3D, anything for a pixel classifier."""

from __future__ import annotations

import pytest

from backend.errors import EoSslError
from backend.train.networks import check_tile, tile_multiple


def test_tile_multiple_follows_the_architecture() -> None:
    assert tile_multiple({"family": "timm", "encoder": "resnet18"}) == 32
    assert tile_multiple({"family": "smp", "encoder": "resnet18", "decoder": "unet"}) == 32
    assert tile_multiple({"family": "unet3d", "depth": 3}) == 8
    assert tile_multiple({"family": "unet3d", "depth": 4}) == 16
    assert tile_multiple({"family": "pixel"}) == 1


def test_check_tile_refuses_what_the_network_cannot_take() -> None:
    check_tile(40, {"family": "unet3d", "depth": 3}, "segmentation")  # 40 = 5 x 2^3: a U-Net-3D takes it
    check_tile(100, {"family": "pixel"}, "segmentation")
    check_tile(48, {"family": "timm", "encoder": "resnet18"}, "classification")  # one class per tile: any size
    with pytest.raises(EoSslError) as err:
        check_tile(40, {"family": "timm", "encoder": "resnet18"}, "segmentation")
    assert err.value.code == "bad_argument" and "multiple of 32" in str(err.value)
    with pytest.raises(EoSslError, match="multiple of 16"):
        check_tile(40, {"family": "unet3d", "depth": 4}, "segmentation")
