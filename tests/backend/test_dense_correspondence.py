"""The correspondence module of dense pre-training: features at corresponding pixels see the same ground pixel."""

import pytest
import torch

from backend.models.unet3d import TemporalStackUNet, UNet3D
from backend.ssl.correspondence import apply_view, gather_pixels, sample_correspondences, sample_view_pair
from backend.ssl.dense_loss import DenseInfoNCELoss


def _ground(batch: int, region: int) -> torch.Tensor:
    """(B, 2, R, R): each pixel holds its own region (row, col): the 'ground truth' of where it is."""
    rr, cc = torch.meshgrid(torch.arange(region), torch.arange(region), indexing="ij")
    return torch.stack([rr, cc]).expand(batch, 2, region, region).float()


@pytest.mark.parametrize("batch_level", [True, False])
@pytest.mark.parametrize("min_overlap", [0.1, 0.5, 0.9])
def test_corresponding_pixels_are_the_same_ground_pixel(batch_level: bool, min_overlap: float) -> None:
    g = torch.Generator().manual_seed(1)
    for _ in range(50):
        a, b = sample_view_pair(6, 40, 24, min_overlap, batch_level=batch_level, generator=g)
        ground = _ground(6, 40)
        va, vb = apply_view(ground, a), apply_view(ground, b)
        ia, ja, ib, jb = sample_correspondences(a, b, 32, g)
        src_a, src_b = gather_pixels(va, ia, ja), gather_pixels(vb, ib, jb)
        assert torch.equal(src_a, src_b)
        # each sampled pixel lies inside both crops, and the 32 are distinct ground pixels
        for k in range(6):
            assert len({tuple(p) for p in src_a[k].tolist()}) == 32
        overlap = ((24 - (a.top - b.top).abs()) * (24 - (a.left - b.left).abs())).float() / 24**2
        assert bool((overlap >= min_overlap - 1e-6).all())


def test_flips_are_applied_to_the_view_and_tracked() -> None:
    g = torch.Generator().manual_seed(3)
    a, b = sample_view_pair(64, 32, 16, 0.5, generator=g)
    assert a.hflip.any() and not a.hflip.all() and b.vflip.any() and not b.vflip.all()
    ground = _ground(64, 32)
    va = apply_view(ground, a)
    k = int(torch.nonzero(a.hflip & ~a.vflip)[0])
    # after a horizontal flip the left-most view column is the crop's right-most ground column
    assert float(va[k, 1, 0, 0]) == float(a.left[k] + 15)


def test_dense_infonce_queue_and_gradient() -> None:
    torch.manual_seed(0)
    loss_fn = DenseInfoNCELoss(dim=8, queue_size=20, temperature=0.1)
    q = torch.nn.functional.normalize(torch.randn(12, 8), dim=1).requires_grad_()
    same = loss_fn(q, q.detach())
    other = loss_fn(q, torch.nn.functional.normalize(torch.randn(12, 8), dim=1))
    assert float(same) < float(other)
    same.backward()
    assert q.grad is not None and torch.isfinite(q.grad).all()
    loss_fn.enqueue(torch.randn(15, 8))
    loss_fn.enqueue(torch.randn(15, 8))
    assert int(loss_fn.queue_filled) == 20 and int(loss_fn.queue_ptr) == 10


@pytest.mark.parametrize("cls", [UNet3D, TemporalStackUNet])
def test_backbones_give_per_pixel_features(cls: type) -> None:
    x, doy = torch.randn(2, 5, 10, 32, 32), torch.randint(1, 366, (2, 5))
    model = cls(10, 5, out_channels=16, base=8, depth=2) if cls is TemporalStackUNet else cls(10, 16, base=8, depth=2)
    assert model(x, doy).shape == (2, 16, 32, 32)
