"""Pixel time-series pre-training (``pretrain --method ts-byol|ts-barlow``) on the real Flanders patch (2018, 64 x 64
px, 36 Sentinel-2 and 40 Sentinel-1 dates on a monthly calendar of 12 periods).

- The data: every observed pixel's series in raw units, exactly the per-period medians of the store's values.
- The views drop what they say: whole periods, whole bands (never a sensor's every band), S2 against S1.
- The encoder (fixed seeded weights): an all-NaN period or a missing sensor is masked, not read; the channels are
  matched by name; embeddings are deterministic and do not depend on the batch.
- The command writes a package whose encoder :func:`load_series_package` rebuilds strictly, with embeddings identical
  to the trained module's (its last checkpoint); ``model.json`` holds the architecture, calendar, normalisation and
  collapse numbers; ``--resume`` continues the step counter; two gloo DDP processes write one package.

No assertion on the quality of the briefly trained encoders. Tiny settings (width 32, one block) keep the file to
about a minute on two busy cores.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from backend.data.calendar import composite_periods
from backend.data.chipstore import ChipStore
from backend.errors import EoSslError
from backend.models.package import load_package, save_package
from backend.models.series_encoder import SeriesEncoder, load_series_package, series_from_blocks
from backend.pixel.data import date_indices, pixel_input, read_inputs
from backend.ssl.pixel_series import build_series_data
from backend.ssl.series import series_views
from tests.backend.pretrain_helpers import one_torch_thread, read_events, run_cli, start_pretrain
from tests.backend.test_pixel_classifier import flanders_store

TINY = ["--set", "width=32", "--set", "depth=1", "--set", "heads=2", "--set", "dim=16", "--set", "proj_hidden=64",
        "--set", "proj_dim=32", "--batch-size", "64", "--devices", "cpu", "--num-workers", "0"]

_threads = pytest.fixture(scope="module", autouse=True)(one_torch_thread)


@pytest.fixture(scope="module")
def store_path(shared_data, tmp_path_factory):
    return flanders_store(shared_data, tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def series(store_path):
    """(values (N, P, C) raw, bands, months) of every pixel of the store, through the pixel classifiers' read."""
    store = ChipStore(store_path)
    inp = pixel_input(store)
    h, w = store.shape
    rows, cols = np.divmod(np.arange(h * w), w)
    values, bands = series_from_blocks(read_inputs(store, inp, rows, cols), inp.blocks)
    return values, bands, torch.tensor(inp.calendar.months(inp.year))


def encoder_for(bands, seed: int = 0) -> SeriesEncoder:
    torch.manual_seed(seed)
    mean = [1000.0 if s == "s2" else -12.0 for s, _ in bands]
    std = [800.0 if s == "s2" else 4.0 for s, _ in bands]
    return SeriesEncoder(bands, mean, std, width=32, depth=2, heads=2, mlp_ratio=2.0, dim=16).eval()


# -- data ------------------------------------------------------------------------------------------------------------
def test_dataset_reads_raw_period_medians(store_path):
    store = ChipStore(store_path)
    data = build_series_data([store_path])
    inp = data.input
    assert data.channels == [("s2", b) for b in store.bands("s2")] + [("s1", "VV"), ("s1", "VH")]
    assert data.calendar() == {"start": inp.calendar.start, "step": "month", "periods": 12, "year": inp.year}
    assert len(data.dataset) == data.lengths[0] > 4000  # the patch is observed almost everywhere
    pick = np.arange(0, len(data.dataset), 97)
    batch = data.dataset.__getitems__(pick)
    assert batch["values"].shape == (len(pick), 12, 12) and batch["values"].dtype == torch.float32
    assert (batch["months"] == torch.tensor(data.months)).all()
    flat = data.dataset.pixels[0][pick]
    rows, cols = np.divmod(flat, store.shape[1])
    expected = []
    for block in inp.blocks:  # a plain numpy read of the store: NaN at invalid observations, medians per period
        t, period_of = date_indices(store, block, inp)
        raw = np.asarray(store.array(block.sensor)[rows, cols], np.float32)[:, t]
        raw[~np.asarray(store.array(f"{block.sensor}_valid")[rows, cols])[:, t].astype(bool)] = np.nan
        expected.append(composite_periods(raw, period_of, 12))
    np.testing.assert_allclose(batch["values"].numpy(), np.concatenate(expected, axis=2), rtol=1e-5, atol=1e-3)


# -- views -----------------------------------------------------------------------------------------------------------
def test_views_drop_periods_bands_and_sensors(series):
    values, bands, _ = series
    x = values[:2048]
    observed = ~torch.isnan(x)
    groups = [[i for i, (s, _) in enumerate(bands) if s == sensor] for sensor in ("s2", "s1")]
    g = torch.Generator().manual_seed(0)

    def views(**kw):
        return series_views(x, groups, generator=g, **{"period_drop": 0.0, "band_drop": 0.0, "cross_sensor": 0.0,
                                                       **kw})

    v1, v2, cross = views()
    assert torch.equal(torch.nan_to_num(v1, 7.0), torch.nan_to_num(x, 7.0)) and not cross.any()
    for v in views(period_drop=0.3)[:2]:  # whole periods, about 30 % of the observed ones, never all
        dropped = torch.isnan(v) & observed
        period = dropped.any(dim=2)
        assert torch.isnan(v[period]).all()
        assert 0.27 < period.sum() / observed.any(dim=2).sum() < 0.33
        assert (~torch.isnan(v)).any(dim=(1, 2)).all()
    for v in views(band_drop=0.2)[:2]:  # whole bands (every period), about 20 %, never every band of a sensor
        dropped = torch.isnan(v) & observed
        band = dropped.any(dim=1)
        assert torch.isnan(v.transpose(1, 2)[band]).all()
        assert 0.17 < band.float().mean() < 0.22
        assert not any(band[:, group].all(dim=1).any() for group in groups)
    v1, v2, cross = views(cross_sensor=0.5)  # S2 against S1, for about half the pixels
    s2, s1 = groups
    assert 0.45 < cross.float().mean() < 0.55
    assert torch.isnan(v1[cross][..., s1]).all() and torch.equal(v1[cross][..., s2].nan_to_num(7), x[cross][..., s2]
                                                                 .nan_to_num(7))
    assert torch.isnan(v2[cross][..., s2]).all() and torch.equal(v2[cross][..., s1].nan_to_num(7), x[cross][..., s1]
                                                                 .nan_to_num(7))
    assert torch.equal(v1[~cross].nan_to_num(7), x[~cross].nan_to_num(7))
    for v in views(period_drop=0.5, band_drop=0.5, cross_sensor=1.0)[:2]:  # every view keeps an observation
        assert (~torch.isnan(v)).any(dim=(1, 2)).all()


# -- the encoder -----------------------------------------------------------------------------------------------------
def test_encoder_masks_missing_periods_and_sensors(series):
    values, bands, months = series
    enc = encoder_for(bands)
    x = values[:256].clone()
    full = enc.embed(x, bands, months)
    assert full.shape == (256, 16) and full.dtype == torch.float32 and torch.isfinite(full).all()
    assert torch.equal(full, enc.embed(x, bands, months))  # deterministic
    torch.testing.assert_close(enc.embed(x[:37], bands, months), full[:37], rtol=0, atol=1e-5)  # batch-independent
    perm = torch.randperm(len(bands), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(enc.embed(x[..., perm], [bands[i] for i in perm], months), full, rtol=0, atol=1e-5)

    # an all-NaN period is the same series without that period (its month gone too)
    gap = x.clone()
    gap[:, 5] = float("nan")
    keep = [p for p in range(12) if p != 5]
    torch.testing.assert_close(enc.embed(gap, bands, months), enc.embed(gap[:, keep], bands, months[keep]),
                               rtol=0, atol=1e-5)
    assert (enc.embed(gap, bands, months) - full).abs().max() > 1e-3  # ... and the period did count when observed
    # a sensor the data lack is read as unobserved
    s2 = [i for i, (s, _) in enumerate(bands) if s == "s2"]
    no_s1 = x.clone()
    no_s1[..., [i for i in range(len(bands)) if i not in s2]] = float("nan")
    torch.testing.assert_close(enc.embed(x[..., s2], [bands[i] for i in s2], months), enc.embed(no_s1, bands, months),
                               rtol=0, atol=1e-5)
    # nothing observed: zeros; a band missing from a sensor the data have: refused
    assert torch.equal(enc.embed(torch.full((2, 12, len(bands)), float("nan")), bands, months), torch.zeros(2, 16))
    with pytest.raises(EoSslError) as err:
        enc.embed(x[..., 1:], bands[1:], months)
    assert err.value.code == "missing_bands"
    assert enc.training is False


# -- the command -----------------------------------------------------------------------------------------------------
def _encoder_from_checkpoint(out, meta) -> SeriesEncoder:
    from backend.models.series_encoder import encoder_from_meta

    ckpt = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    enc = encoder_from_meta(meta)
    enc.load_state_dict({k[len("encoder."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("encoder.")})
    return enc.eval()


def test_pretrain_package_loads_strictly_then_resumes(store_path, series, tmp_path):
    values, bands, months = series
    out = tmp_path / "ts"
    args = ["--data", store_path, "--method", "ts-byol", "--out", out, *TINY, "--max-steps", 4,
            "--checkpoint-every", 2]
    rc, events = run_cli("pretrain", args)
    assert rc == 0, [e for e in events if e["event"] == "error"]
    meta, weights = load_package(out)
    store = ChipStore(store_path)
    inp = pixel_input(store)
    assert meta["task"] == "pretrain" and meta["method"] == "ts-byol"
    assert {k: meta["architecture"][k] for k in ("family", "encoder", "in_chans", "width", "depth", "heads", "dim")} \
        == {"family": "series", "encoder": "series-transformer", "in_chans": 12, "width": 32, "depth": 1, "heads": 2,
            "dim": 16}
    assert meta["input"]["channels"] == [list(b) for b in bands]
    assert meta["input"]["calendar"] == {**inp.calendar.to_dict(), "year": inp.year}
    assert meta["input"]["months"] == months.tolist() and meta["input"]["periods"] == inp.calendar.labels(inp.year)
    stats = store.stats("s2")
    assert meta["normalization"]["s2"]["B04"]["mean"] == pytest.approx(stats["B04"]["mean"], rel=1e-6)
    assert meta["normalization"]["s1"]["VH"]["std"] == pytest.approx(store.stats("s1")["VH"]["std"], rel=1e-6)
    for key in ("embedding_std", "std_ratio", "effective_rank", "encoder_effective_rank", "collapsed",
                "dimensional_collapse", "rank_fraction"):
        assert key in meta["collapse"], key
    assert meta["training"]["steps"] == 4 and meta["training"]["optimizer"] == "AdamW"
    assert weights and all(k.startswith("encoder.") for k in weights)  # heads and the momentum copy dropped

    enc = load_series_package(out)
    x = values[::16]
    emb = enc.embed(x, bands, months)
    assert emb.shape == (len(x), 16) and torch.isfinite(emb).all()
    assert torch.equal(emb, _encoder_from_checkpoint(out, meta).embed(x, bands, months))  # the trained weights

    # strict: a stray tensor or another family is refused
    bad = tmp_path / "bad"
    save_package(bad, {**weights, "encoder.extra": torch.zeros(1)}, {k: v for k, v in meta.items()
                                                                        if k not in ("format", "version")})
    with pytest.raises(EoSslError) as err:
        load_series_package(bad)
    assert err.value.code == "corrupt_model"
    timm_meta = {**meta, "architecture": {**meta["architecture"], "family": "timm"}}
    (bad / "model.json").write_text(json.dumps(timm_meta))
    with pytest.raises(EoSslError) as err:
        load_series_package(bad)
    assert err.value.code == "unsupported_model"

    # --resume goes on from the checkpoint of step 4 to step 6
    rc, events = run_cli("pretrain", [*args[:-4], "--max-steps", 6, "--checkpoint-every", 2, "--resume"])
    assert rc == 0, [e for e in events if e["event"] == "error"]
    logs = " ".join(e["message"] for e in events if e["event"] == "log")
    assert f"resuming from {out / 'checkpoints' / 'last.ckpt'} at step 4" in logs
    steps = [e["step"] for e in events if e["event"] == "progress"]
    assert steps[0] > 4 and steps[-1] == 6
    meta2, _ = load_package(out)
    assert meta2["training"]["steps"] == 6 and meta2["training"]["resumed_from_step"] == 4
    assert meta2["metrics"]["history"][-1]["step"] == 6

    # --init: ts-barlow goes on from the ts-byol encoder (its weights and normalisation), the chain says so
    init = tmp_path / "from-init"
    rc, events = run_cli("pretrain", ["--data", store_path, "--method", "ts-barlow", "--out", init, *TINY,
                                      "--max-steps", 1, "--init", out])
    assert rc == 0, [e for e in events if e["event"] == "error"]
    meta3, _ = load_package(init)
    assert [s["method"] for s in meta3["provenance"]["chain"]] == ["ts-byol", "ts-barlow"]
    assert meta3["normalization"] == meta2["normalization"]


def test_options_are_checked_before_any_work(store_path, tmp_path):
    rc, events = run_cli("pretrain", ["--data", store_path, "--method", "ts-barlow", "--out", tmp_path / "a",
                                      "--set", "queue_size=5"])
    error = next(e for e in events if e["event"] == "error")
    assert rc == 2 and error["code"] == "bad_argument" and "period_drop" in error["hint"]
    rc, events = run_cli("pretrain", ["--data", store_path, "--method", "ts-barlow", "--out", tmp_path / "b",
                                      "--encoder", "resnet18"])
    assert rc == 2 and next(e for e in events if e["event"] == "error")["code"] == "bad_argument"
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.slow
def test_two_gloo_processes_write_one_ts_barlow_package(store_path, tmp_path):
    out = tmp_path / "ddp"
    log = tmp_path / "ddp.jsonl"
    args = [a for a in TINY if a not in ("--devices", "cpu")]
    with open(log, "w") as f:
        proc = start_pretrain(["--data", store_path, "--method", "ts-barlow", "--out", out, *args, "--max-steps", 2,
                               "--devices", 2, "--strategy", "ddp"], f)
        _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-3000:]
    events = read_events(log)
    kinds = [e["event"] for e in events]
    assert kinds.count("start") == 1 and kinds.count("done") == 1 and kinds[-1] == "done"
    assert "in 2 processes" in " ".join(e["message"] for e in events if e["event"] == "log")
    meta, _ = load_package(out)
    assert meta["method"] == "ts-barlow" and meta["training"]["world_size"] == 2 and meta["training"]["steps"] == 2
    assert meta["collapse"]["effective_rank"] is not None
    assert load_series_package(out).dim == 16
