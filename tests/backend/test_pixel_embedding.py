"""The pixel classifier's image-encoder embedding (:class:`backend.pixel.features.Embedding`): projecting each
pyramid level at its own resolution, then upsampling, gives the numbers of projecting the upsampled pyramid."""

from __future__ import annotations

import pytest
import torch

from backend.pixel.features import Embedding, EmbeddingSpec


@pytest.mark.parametrize("mode", ["stack", "per-band"])
def test_projection_before_upsampling_is_the_projection_of_the_pyramid(mode: str) -> None:
    torch.manual_seed(0)
    bands = 4
    chans = bands if mode == "stack" else 1
    spec = EmbeddingSpec("resnet18", chans, mode, [("s2", f"B0{i + 2}") for i in range(bands)], [0.1] * chans,
                         [2.0] * chans, [0, 1, 2, 3], dim=8)
    emb = Embedding(spec).eval()
    emb.pca_mean.normal_()
    emb.pca_components.normal_()
    x = torch.randn(2, bands, 96, 64)  # not square: each level's size is its own
    with torch.no_grad():
        pyramid = emb.pyramid(x)
        expected = torch.einsum("bchw,kc->bkhw", pyramid - emb.pca_mean.view(1, -1, 1, 1), emb.pca_components)
        got = emb(x)
    assert pyramid.shape == (2, spec.pyramid_dim, 96, 64) and got.shape == (2, 8, 96, 64)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-4 * float(expected.abs().max()))
