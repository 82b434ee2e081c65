"""``eo-ssl pretrain`` end to end on real chips: every method writes a loadable package whose encoder embeds real
chips to the right shape; model.json says what DESIGN.md asks; the progress events carry step/total, epoch, loss,
lr, imgs/s and eta; bad packages, checkpoints and outputs are refused with clear errors."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from backend.data.chipstore import ChipStore
from backend.models.package import load_package
from backend.ssl.package_encoder import embed_input, encoder_from_package
from tests.backend.pretrain_helpers import (
    SMALL_HEADS,
    TINY,
    pretrain_ok,
    run_cli,
)

STEPS = 4


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def chips(pretrain_eurosat):
    """Eight real EuroSAT chips, standardised, with the store's band names."""
    store = ChipStore(pretrain_eurosat)
    mean, std = store.mean_std("s2")
    x = (np.asarray(store.array("chips")[:8], np.float32) - mean[:, None, None]) / std[:, None, None]
    return torch.from_numpy(x), store.bands("s2")


@pytest.fixture(scope="module")
def byol_package(pretrain_eurosat, tmp_path_factory):
    out = tmp_path_factory.mktemp("byol") / "model"
    events = pretrain_ok(["--data", pretrain_eurosat, "--method", "byol", "--out", out, *TINY, *SMALL_HEADS["byol"],
                          "--max-steps", STEPS, "--checkpoint-every", 2])
    return out, events


def _check_package(out, chips, expect_channels=None):
    meta, weights = load_package(out)
    assert weights and all(k.startswith("encoder.") for k in weights)
    assert not any("momentum" in k or "projection" in k for k in weights)  # heads and teachers are dropped
    encoder, meta = encoder_from_package(out)
    x, bands = chips
    names = [b for _, b in meta["input"]["channels"]]
    if expect_channels is not None:
        assert names == expect_channels
    idx = [bands.index(b) for b in names]
    feats = embed_input(encoder, x[:, idx, :32, :32], meta["input"]["channel_mode"])
    assert feats.shape == (len(x), meta["architecture"]["num_features"]) == (len(x), 512)
    assert torch.isfinite(feats).all()
    assert (out / "training_curves.png").stat().st_size > 1000
    return meta


@pytest.mark.slow
def test_byol_package_and_events(byol_package, chips, pretrain_eurosat):
    out, events = byol_package
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done" and events[-1]["ok"]
    logs = " ".join(e["message"] for e in events if e["event"] == "log")
    assert "training on CPU" in logs
    progress = [e for e in events if e["event"] == "progress"]
    assert progress[-1]["step"] == progress[-1]["total"] == STEPS
    for key in ("step", "total", "epoch", "loss", "lr", "imgs_per_s", "eta_s"):
        assert progress[-1].get(key) is not None, key
    artifacts = {e["kind"]: e["path"] for e in events if e["event"] == "artifact"}
    assert artifacts["model"] == str(out) and artifacts["plot"].endswith("training_curves.png")

    store = ChipStore(pretrain_eurosat)
    meta = _check_package(out, chips, expect_channels=store.bands("s2"))
    assert meta["task"] == "pretrain" and meta["method"] == "byol" and meta["variant"] is None
    assert meta["architecture"] == {"family": "timm", "encoder": "resnet18", "in_chans": 13, "num_features": 512,
                                    "decoder": None, "num_classes": None}
    assert meta["input"]["channel_mode"] == "stack" and meta["input"]["crop"] == 32
    assert all(s == "s2" for s, _ in meta["input"]["channels"])
    stats = store.stats("s2")
    for band in store.bands("s2"):
        assert meta["normalization"]["s2"][band]["mean"] == pytest.approx(stats[band]["mean"])
        assert meta["normalization"]["s2"][band]["std"] == pytest.approx(stats[band]["std"])
    t = meta["training"]
    assert t["steps"] == STEPS and t["batch_size"] == 8 and t["optimizer"] == "SGD" and t["lr"] > 0
    assert t["method_config"]["proj_hidden"] == 256  # --set reached the method
    assert meta["metrics"]["final_loss"] is not None and meta["metrics"]["history"]
    c = meta["collapse"]
    assert c["embedding_std"] > 0 and c["effective_rank"] >= 1 and c["collapsed"] in (True, False)
    assert meta["provenance"]["data"] == [str(pretrain_eurosat)] and meta["provenance"]["init"] == "random"
    summary = events[-1]["summary"]
    assert summary["steps"] == STEPS and summary["model"] == str(out)
    run = json.loads((out / "checkpoints" / "run.json").read_text())
    assert run["method"] == "byol" and (out / "checkpoints" / "last.ckpt").exists()


@pytest.mark.slow
@pytest.mark.parametrize("method", ["moco-v2", "simsiam", "barlow-twins", "swav"])
def test_every_method_writes_a_loadable_package(method, pretrain_eurosat, chips, tmp_path):
    out = tmp_path / method
    events = pretrain_ok(["--data", pretrain_eurosat, "--method", method, "--out", out, *TINY, *SMALL_HEADS[method],
                          "--max-steps", 3])
    meta = _check_package(out, chips)
    assert meta["method"] == method and meta["training"]["steps"] == 3
    assert meta["collapse"]["std_ratio"] is not None
    assert events[-1]["summary"]["final_loss"] is not None


@pytest.mark.slow
def test_rs_byol_single_on_s1_s2_pairs_gives_a_per_band_encoder(pretrain_ben, pretrain_eurosat, chips, tmp_path):
    """Trained on a BigEarthNet-MM S1/S2 pair; the per-band encoder then embeds EuroSAT chips (no S1 needed)."""
    out = tmp_path / "rs"
    events = pretrain_ok(["--data", pretrain_ben, "--method", "rs-byol", "--out", out, *TINY, "--max-steps", 3])
    meta = _check_package(out, chips, expect_channels=["B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A",
                                                         "B11", "B12"])
    assert meta["variant"] == "single" and meta["input"]["channel_mode"] == "per-band"
    assert meta["architecture"]["in_chans"] == 1
    t = meta["training"]
    assert t["schedule"] == "cosine-warm-restarts" and t["lr"] == 0.2 and t["weight_decay"] == 1e-5
    assert t["method_config"]["momentum"] == 0.9 and t["method_config"]["proj_hidden"] == 256
    assert set(meta["normalization"]["s1"]) == {"VV", "VH"}
    assert events[-1]["summary"]["variant"] == "single"


def test_two_stores_with_different_bands_are_combined(pretrain_ben, tmp_path_factory, shared_data, tmp_path):
    """A 12-band L2A pair and the 13-band L1C Sen1Floods11 chip: trained on the 12 bands they share."""
    from backend.data.pretraining import build_ssl_data
    from tests.backend.pretrain_helpers import _prepare

    s1f = tmp_path_factory.getbasetemp() / "pretrain_sen1floods11"
    if not (s1f / "manifest.json").exists():
        sample = shared_data / "sen1floods11" / "sample"
        _prepare(["--s2", sample / "S2", "--s1", sample / "S1", "--out", s1f])
    data = build_ssl_data([pretrain_ben, s1f], need_s1=True, crop=32, epoch_length=100)
    assert len(data.dataset) == sum(data.lengths) and len(data.lengths) == 2
    assert "B10" not in data.bands["s2"] and len(data.bands["s2"]) == 12
    assert data.dropped == {str(s1f): ["B10"]}
    sample = data.dataset[len(data.dataset) - 1]  # from the second store
    assert sample["s2"].shape == (12, 32, 32) and sample["s1"].shape == (2, 32, 32)


# -- refusals -----------------------------------------------------------------------------------------------------
def _error(args):
    rc, events = run_cli("pretrain", args)
    errors = [e for e in events if e["event"] == "error"]
    assert rc == 2 and len(errors) == 1, events[-3:]
    return errors[0]


@pytest.mark.slow
def test_pickled_or_corrupt_init_package_is_refused(byol_package, pretrain_eurosat, tmp_path):
    good, _ = byol_package
    meta, weights = load_package(good)
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "model.json").write_text((good / "model.json").read_text())
    torch.save(weights, pickled / "weights.safetensors")  # a pickle under the right name
    err = _error(["--data", pretrain_eurosat, "--method", "byol", "--init", pickled, "--out", tmp_path / "a", *TINY])
    assert err["code"] == "unsafe_weights" and "pickle" in err["message"]
    assert not (tmp_path / "a").exists()

    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "model.json").write_text((good / "model.json").read_text())
    data = (good / "weights.safetensors").read_bytes()
    (corrupt / "weights.safetensors").write_bytes(data[: len(data) // 2])
    err = _error(["--data", pretrain_eurosat, "--method", "byol", "--init", corrupt, "--out", tmp_path / "b", *TINY])
    assert err["code"] == "corrupt_weights"

    err = _error(["--data", pretrain_eurosat, "--method", "simsiam", "--encoder", "resnet34", "--init", good,
                  "--out", tmp_path / "c", *TINY[2:]])
    assert err["code"] == "init_mismatch"


class _Payload:
    def __reduce__(self):  # what a malicious checkpoint would do on unpickling
        return (print, ("this must never run",))


@pytest.mark.slow
def test_pickled_or_corrupt_checkpoint_is_refused_on_resume(byol_package, pretrain_eurosat, tmp_path):
    import shutil

    good, _ = byol_package
    out = tmp_path / "model"
    shutil.copytree(good, out)
    ckpt = out / "checkpoints" / "last.ckpt"
    args = ["--data", pretrain_eurosat, "--method", "byol", "--out", out, *TINY, *SMALL_HEADS["byol"], "--max-steps", 6,
            "--resume"]
    state = torch.load(ckpt, weights_only=True)
    state["callbacks"]["evil"] = _Payload()
    with open(ckpt, "wb") as f:
        pickle.dump(state, f)  # a plain pickle with code in it
    err = _error(args)
    assert err["code"] in ("unsafe_checkpoint", "corrupt_checkpoint") and "--resume" in err["hint"]
    torch.save(state, ckpt)  # torch's format, same payload
    assert _error(args)["code"] == "unsafe_checkpoint"
    shutil.copy2(good / "checkpoints" / "last.ckpt", ckpt)
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[: len(data) // 3])
    assert _error(args)["code"] == "corrupt_checkpoint"


def test_existing_output_needs_resume_or_overwrite(byol_package, pretrain_eurosat, tmp_path):
    good, _ = byol_package
    err = _error(["--data", pretrain_eurosat, "--method", "byol", "--out", good, *TINY, "--max-steps", 1])
    assert err["code"] == "output_exists" and "--resume" in err["hint"] and "--overwrite" in err["hint"]
    err = _error(["--data", pretrain_eurosat, "--method", "byol", "--out", tmp_path / "new", *TINY, "--resume"])
    assert err["code"] == "no_checkpoint"
    err = _error(["--data", pretrain_eurosat, "--method", "simsiam", "--out", good, *TINY, "--max-steps", 8,
                  "--resume"])
    assert err["code"] == "resume_mismatch" and "byol" in err["message"]
    err = _error(["--data", tmp_path / "nowhere", "--method", "byol", "--out", tmp_path / "x", *TINY])
    assert err["code"] == "input_not_found"
    err = _error(["--data", pretrain_eurosat, "--method", "byol", "--variant", "three", "--out", tmp_path / "y", *TINY])
    assert err["code"] == "bad_argument"


@pytest.mark.slow
def test_collapse_is_reported_as_warning_summary_and_model_json(pretrain_eurosat, tmp_path):
    """With the threshold raised above any healthy value (``collapse_threshold=5``: std x sqrt(d) is ~1), every epoch
    counts as collapsed: the plumbing from the monitor to the warning event, the summary and model.json."""
    out = tmp_path / "m"
    events = pretrain_ok(["--data", pretrain_eurosat, "--method", "simsiam", "--out", out, *TINY,
                          *SMALL_HEADS["simsiam"], "--max-steps", 2, "--set", "collapse_threshold=5"])
    warnings = [e for e in events if e["event"] == "warning" and e["code"] == "collapse"]
    assert warnings and "collapsed in epoch 1" in warnings[0]["message"]
    assert events[-1]["summary"]["collapse"].startswith("COLLAPSED")
    meta, _ = load_package(out)
    assert meta["collapse"]["collapsed"] is True and meta["collapse"]["collapsed_epochs"] == [1]


@pytest.mark.slow
def test_dimensional_collapse_is_reported(pretrain_eurosat, tmp_path, monkeypatch):
    """With the rank-fraction limit above 1 every run counts as dimensionally collapsed (and not as collapsed): the
    plumbing to the ``dimensional_collapse`` warning, the summary and model.json."""
    from backend.ssl import collapse

    monkeypatch.setattr(collapse, "DIMENSIONAL_COLLAPSE", 2.0)
    out = tmp_path / "m"
    events = pretrain_ok(["--data", pretrain_eurosat, "--method", "barlow-twins", "--out", out, *TINY,
                          *SMALL_HEADS["barlow-twins"], "--max-steps", 2])
    codes = [e["code"] for e in events if e["event"] == "warning"]
    assert "dimensional_collapse" in codes and "collapse" not in codes
    assert events[-1]["summary"]["collapse"].startswith("dimensional collapse")
    meta, _ = load_package(out)
    assert meta["collapse"]["dimensional_collapse"] is True and meta["collapse"]["collapsed"] is False
    assert 0 < meta["collapse"]["rank_fraction"] <= 1
