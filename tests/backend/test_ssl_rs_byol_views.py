"""RS-BYOL's views are what the paper says: which bands each view draws, per variant, per sample.

The batch is a real BigEarthNet-MM crop batch (12 S2 L2A bands, S1 VV/VH) whose channels are then overwritten with
their own index (S2 band k -> k, S1 polarisation j -> 100 + j), so a view's values name the bands it was drawn from.
"""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from backend.data.pretraining import build_ssl_data
from backend.errors import EoSslError
from backend.ssl.rs_byol import RGB, RSBYOL, S2_POOL
from tests.backend.pretrain_helpers import TINY, eurosat_store, run_cli

N = 400


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def labelled(pretrain_ben):
    data = build_ssl_data([pretrain_ben], need_s1=True, crop=32)
    assert data.bands["s2"] == ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12"]
    assert data.bands["s1"] == ["VV", "VH"]
    batch = torch.utils.data.default_collate([data.dataset[i] for i in range(4)])
    assert batch["s2"].shape == (4, 12, 32, 32) and batch["s1"].shape == (4, 2, 32, 32)
    s2 = torch.arange(12, dtype=torch.float32).view(1, 12, 1, 1).expand(N, 12, 8, 8).clone()
    s1 = (100 + torch.arange(2, dtype=torch.float32)).view(1, 2, 1, 1).expand(N, 2, 8, 8).clone()
    return {"s2": s2, "s1": s1}, data.bands


def _views(variant, labelled):
    batch, bands = labelled
    module = RSBYOL({"variant": variant, "encoder": "resnet18", "bands": bands, "crop": 32})
    torch.manual_seed(0)
    v1, v2, info = module.band_views(batch)
    names2 = bands["s2"]

    def name(value: float) -> str:
        v = int(round(value))
        return bands["s1"][v - 100] if v >= 100 else names2[v]

    # every pixel of a view's channel holds the same index: read it from one pixel
    first = [[name(v) for v in row] for row in v1[:, :, 0, 0].tolist()]
    second = [[name(v) for v in row] for row in v2[:, :, 0, 0].tolist()]
    assert (v1 == v1[:, :, :1, :1]).all() and (v2 == v2[:, :, :1, :1]).all()
    return module, first, second, info


def test_single_is_one_s2_band_vs_one_s1_polarisation(labelled):
    module, first, second, _ = _views("single", labelled)
    assert module.in_chans() == 1
    assert all(len(r) == 1 and r[0] in S2_POOL for r in first)  # never B01, B09 (60 m), nor B10
    assert all(len(r) == 1 and r[0] in ("VV", "VH") for r in second)
    counts = Counter(r[0] for r in first)
    assert set(counts) == set(S2_POOL)  # all ten bands are drawn...
    assert min(counts.values()) > N / 10 / 3  # ...roughly uniformly
    assert 0.35 < sum(r[0] == "VV" for r in second) / N < 0.65
    spec = module.input_spec()
    assert spec["channel_mode"] == "per-band" and [b for _, b in spec["channels"]] == list(S2_POOL)


def test_three_is_three_s2_bands_vs_vv_vh_and_a_copy(labelled):
    module, first, second, _ = _views("three", labelled)
    assert module.in_chans() == 3
    assert all(len(set(r)) == 3 and set(r) <= set(S2_POOL) for r in first)
    assert all(r[:2] == ["VV", "VH"] and r[2] in ("VV", "VH") for r in second)
    assert 0.35 < sum(r[2] == "VV" for r in second) / N < 0.65
    assert len({tuple(r) for r in first}) > 100  # drawn per sample
    assert module.input_spec()["channel_mode"] == "stack"


def test_s2_only_is_two_distinct_s2_bands(labelled):
    module, first, second, _ = _views("s2-only", labelled)
    assert module.in_chans() == 1 and not RSBYOL.needs_s1({"variant": "s2-only"})
    assert all(a[0] in S2_POOL and b[0] in S2_POOL and a[0] != b[0] for a, b in zip(first, second))


def test_rgb_s1s2_is_rgb_vs_a_polarisation_and_two_non_rgb_bands(labelled):
    module, first, second, _ = _views("rgb-s1s2", labelled)
    assert module.in_chans() == 3
    assert all(r == list(RGB) for r in first)
    for r in second:
        assert r[0] in ("VV", "VH")
        assert r[1] != r[2] and {r[1], r[2]} <= set(S2_POOL) - set(RGB)
    assert [b for _, b in module.input_spec()["channels"]] == list(RGB)


def test_views_are_augmented_independently(labelled):
    batch, bands = labelled
    module = RSBYOL({"variant": "three", "encoder": "resnet18", "bands": bands, "crop": 8})
    torch.manual_seed(0)
    x = {"s2": torch.randn(16, 12, 16, 16), "s1": torch.randn(16, 2, 16, 16)}
    v1, v2 = module.make_views(x)
    assert v1.shape == v2.shape == (16, 3, 8, 8)


def test_unknown_variant_is_refused(labelled):
    _, bands = labelled
    with pytest.raises(EoSslError) as err:
        RSBYOL({"variant": "four", "bands": bands})
    assert err.value.code == "bad_argument"


def test_store_without_s1_is_a_clear_error(tmp_path_factory, shared_data, tmp_path):
    """EuroSAT has no Sentinel-1: rs-byol single refuses it (s1_missing, exit 2) and says what to do."""
    pretrain_eurosat = eurosat_store(tmp_path_factory, shared_data)
    rc, events = run_cli("pretrain", ["--data", pretrain_eurosat, "--method", "rs-byol", "--variant", "single",
                                      "--out", tmp_path / "m", *TINY, "--max-steps", "1"])
    assert rc == 2
    error = next(e for e in events if e["event"] == "error")
    assert error["code"] == "s1_missing"
    assert "Sentinel-1" in error["message"] and "--variant s2-only" in error["hint"]
    assert not (tmp_path / "m" / "model.json").exists()
