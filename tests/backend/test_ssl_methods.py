"""The SSL methods as modules, on real chips: every method's loss goes down, the collapse monitor tells a collapsed
representation from a healthy one, and the batch augmentations keep what standardised multispectral data need."""

from __future__ import annotations

import math

import pytest
import torch

from backend.data.pretraining import build_ssl_data
from backend.errors import EoSslError
from backend.ssl import augmentations as A
from backend.ssl.collapse import CollapseMonitor, collapse_stats
from backend.ssl.registry import IMAGE_METHODS, METHODS, get_method

SMALL: dict[str, dict] = {
    "rs-byol": {"encoder": "resnet18", "variant": "single"},
    "byol": {"proj_hidden": 256, "proj_dim": 64},
    "moco-v2": {"proj_hidden": 256, "queue_size": 512},
    "simsiam": {"proj_dim": 256, "pred_hidden": 64},
    "barlow-twins": {"proj_hidden": 256, "proj_dim": 256},
    "swav": {"proj_hidden": 256, "frozen_steps": 0},
}


pytestmark = pytest.mark.usefixtures("one_thread")


def test_registry_has_every_method():
    assert list(METHODS) == ["rs-byol", "byol", "moco-v2", "simsiam", "barlow-twins", "swav", "dense-moco", "ts-byol",
                             "ts-barlow"]
    assert list(IMAGE_METHODS) == list(METHODS)[:6]
    assert {METHODS[m].level for m in METHODS} == {"image", "pixel", "series"}
    with pytest.raises(EoSslError) as err:
        get_method("simclr")
    assert err.value.code == "unknown_method" and "moco-v2" in err.value.hint


def _batch(store, need_s1: bool, n: int = 16) -> tuple[dict[str, torch.Tensor], dict]:
    data = build_ssl_data([store], need_s1=need_s1, crop=32)
    g = torch.Generator().manual_seed(0)
    idx = torch.randperm(len(data.dataset), generator=g)[:n].tolist()
    return torch.utils.data.default_collate([data.dataset[i] for i in idx]), data.bands


@pytest.mark.slow
@pytest.mark.parametrize("name", list(IMAGE_METHODS))
def test_loss_goes_down_on_real_chips(name, pretrain_eurosat, pretrain_ben):
    """Six SGD steps on the same augmented views of 8 real crops: the loss on those views drops."""
    rs = name == "rs-byol"
    batch, bands = _batch(pretrain_ben if rs else pretrain_eurosat, need_s1=rs, n=8)
    torch.manual_seed(0)
    cls = IMAGE_METHODS[name]
    config = {"bands": bands, "sensors": ["s2"], "crop": 32, "batch_size": 8, "encoder": "resnet18",
              **SMALL[name]}
    module = cls(config)
    opt = torch.optim.SGD(module.parameters(), lr=0.05 if name != "barlow-twins" else 0.01, momentum=0.9)
    torch.manual_seed(1)
    v1, v2 = module.make_views(batch)
    if name == "swav":  # multi-crop: the two 32 px views stacked, then two 16 px views
        assert v1.shape == (16, module.in_chans(), 32, 32) and v2.shape == (16, module.in_chans(), 16, 16)
    else:
        assert v1.shape == v2.shape == (8, module.in_chans(), 32, 32)
    assert torch.isfinite(v1).all() and torch.isfinite(v2).all()

    # the loss's own state (MoCo's queue) as it was before training: "after" is measured against the same negatives,
    # not against a queue the training filled with these very views
    queue = {k: v.clone() for k, v in module.criterion.named_buffers()}

    def probe() -> float:
        with torch.no_grad():
            return float(module.forward_loss(v1, v2)[0])

    before = probe()
    for _ in range(6):
        loss, projection, features = module.forward_loss(v1, v2)
        opt.zero_grad()
        loss.backward()
        opt.step()
    for k, v in module.criterion.named_buffers():
        v.copy_(queue[k])
    after = probe()
    assert math.isfinite(before) and math.isfinite(after)
    assert after < before, f"{name}: loss {before:.4f} -> {after:.4f}"
    assert features.shape == (8, module.feat_dim)
    assert projection.shape[0] == 8


@pytest.mark.parametrize("low", [2, 0])
def test_swav_multi_crop_views_and_loss(low, pretrain_eurosat):
    """Two 32 px views whose codes are the targets, plus ``low`` 16 px views that only predict; the loss is finite
    and reaches the encoder through the small views too."""
    batch, bands = _batch(pretrain_eurosat, need_s1=False, n=4)
    torch.manual_seed(0)
    module = IMAGE_METHODS["swav"]({"bands": bands, "sensors": ["s2"], "crop": 32, "batch_size": 4,
                                    "encoder": "resnet18", **SMALL["swav"], "low_res_crops": low})
    high, small = module.make_views(batch)
    assert high.shape == (8, 13, 32, 32) and small.shape == (4 * low, 13, 16, 16)
    loss, z, f = module.forward_loss(high, small)
    assert torch.isfinite(loss) and z.shape[0] == f.shape[0] == 4
    assert module.describe()["views"] == f"2 x 32 px + {low} x 16 px (multi-crop)"
    if low:  # the small views are predicted from: a loss on them alone has gradients
        p_low = module._codes(small, low)[0]
        grads = torch.autograd.grad(sum(p.sum() for p in p_low), module.encoder.parameters(), allow_unused=True)
        assert any(g is not None and g.abs().sum() > 0 for g in grads)


def test_collapse_monitor_tells_collapse_from_spread():
    torch.manual_seed(0)
    spread = collapse_stats(torch.randn(512, 128))
    assert 0.9 < spread.std_ratio < 1.1  # ~1/sqrt(d) per dimension
    assert spread.effective_rank > 100
    constant = torch.ones(512, 128) + 1e-4 * torch.randn(512, 128)
    mon = CollapseMonitor()
    mon.update(constant, torch.rand(512, 16))
    stats = mon.compute()
    assert stats["collapse/collapsed"] == 1.0 and stats["collapse/std_ratio"] < 0.01
    # a dimensional collapse: spread along one direction only
    line = torch.randn(512, 1) * torch.randn(1, 128)
    assert collapse_stats(line).effective_rank < 1.5
    mon.update(torch.randn(300, 128))
    healthy = mon.compute()
    assert healthy["collapse/collapsed"] == 0.0 and healthy["collapse/rank_fraction"] > 0.5
    assert mon.compute() is None  # reset after each epoch
    # spread (std fine) but along 4 of 1024 possible directions: not "collapsed", rank_fraction < 1 %
    few = torch.randn(1024, 4) @ torch.randn(4, 2048) + 0.3
    mon.update(few)
    stats = mon.compute()
    assert stats["collapse/collapsed"] == 0.0 and stats["collapse/std_ratio"] > 0.5
    assert stats["collapse/rank_fraction"] < 0.01


def test_monitor_keeps_only_the_last_samples():
    mon = CollapseMonitor(max_samples=100)
    for _ in range(10):
        mon.update(torch.randn(32, 8))
    assert 100 <= sum(len(p) for p in mon._proj) < 132


def test_augmentations_keep_standardised_values_and_shapes():
    torch.manual_seed(0)
    x = torch.randn(64, 13, 48, 48) * 2 - 1  # standardised data: negative values are normal
    for aug in (A.rs_byol_augment(32), A.ssl4eo_augment(32)):
        y = aug(x)
        assert y.shape == (64, 13, 32, 32) and y.dtype == torch.float32
        assert y.min() < -1.0  # no clamping to [0, 1] as kornia's colour ops would do
    grey = A.RandomBandGreyscale(p=1.0)(x)
    assert torch.allclose(grey, x.mean(1, keepdim=True).expand_as(x))
    one = torch.randn(8, 1, 16, 16)
    assert torch.equal(A.RandomGreyscaleIf3(p=1.0)(one), one)  # greyscale only for 3-channel views
    three = torch.randn(8, 3, 16, 16)
    assert torch.allclose(A.RandomGreyscaleIf3(p=1.0)(three)[:, 0], three.mean(1))
    dropped = A.RandomChannelDrop(p=1.0, drop=0.99)(x)
    kept = (dropped.abs().sum(dim=(2, 3)) > 0).sum(dim=1)
    assert (kept >= 1).all()  # never every band
    bc = A.RandomBrightnessContrast(brightness=0.0, contrast=0.0, p=1.0)(x)
    assert torch.allclose(bc, x, atol=1e-5)
