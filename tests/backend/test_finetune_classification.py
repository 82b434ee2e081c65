"""``eo-ssl finetune --task classification`` on the real EuroSAT-MS chips (13 bands, 10 classes, 64 x 64 px).

Checked: the package (classes with names and colours, the chips' bands in file order, the grid resolution read from
the chips and called Sentinel-2's 10 m, validation metrics, label-fraction bookkeeping), label fractions drawn by
chip (stratified: every class keeps a chip; seeded; nested), and RS-BYOL's per-band encoder (features = mean of the
bands' features).
"""

from __future__ import annotations

import numpy as np
import torch

from backend.data.chipstore import ChipStore
from backend.models.classifier import ClassifierNet
from backend.predict.scene import load_model
from backend.train import finetune as ft
from tests.backend.model_helpers import FAST, cls_model, command_ok, read_meta

EUROSAT = ["AnnualCrop", "Forest", "HerbaceousVegetation", "Highway", "Industrial", "Pasture", "PermanentCrop",
           "Residential", "River", "SeaLake"]


def test_classification_package(shared_data, base, eurosat_chips):
    model = cls_model(shared_data, base)
    meta = read_meta(model)
    assert meta["task"] == "classification"
    assert meta["architecture"] == {"family": "timm", "encoder": "resnet18", "in_chans": 13, "decoder": "mlp",
                                    "num_classes": 10}
    assert [c["name"] for c in meta["classes"]] == EUROSAT and all(c["colour"].startswith("#") for c in
                                                                   meta["classes"])
    assert meta["input"]["channels"] == [["s2", b] for b in ChipStore(eurosat_chips).bands("s2")]
    assert meta["input"]["crop"] == 64
    assert meta["grid"]["resolution"] == 10.0 and "first chip" in meta["grid"]["resolution_source"]
    labels = meta["training"]["labels"]
    assert labels["unit"] == "chip" and labels["train_chips_used"] == labels["train_chips_total"] > 100
    val = meta["metrics"]["val"]
    assert val["n"] == labels["val_chips"] > 20 and 0 <= val["oa"] <= 1
    _, net = load_model(model)
    net.eval()
    assert net(torch.zeros(2, 13, 64, 64)).shape == (2, 10)


def test_label_fraction_by_chip(eurosat_chips, tmp_path):
    st = ChipStore(eurosat_chips)
    spec, picks = ft.input_spec(st, ft.load_init("random", None), None)

    def used(fraction: float, seed: int = 0) -> np.ndarray:
        return ft.build_task_data(st, "classification", spec, picks, label_fraction=fraction, seed=seed).train.indices

    labels = np.asarray(st.array("chip_labels"))
    tenth, half = used(0.1), used(0.5)
    assert set(tenth) < set(half)  # nested
    assert set(np.unique(labels[tenth])) == set(range(10))  # stratified: every class keeps a chip
    assert np.array_equal(used(0.1), tenth) and not np.array_equal(used(0.1, seed=3), tenth)
    assert (np.asarray(st.array("chip_split"))[half] == 1).all()  # training chips only
    events = command_ok("finetune", ["--data", eurosat_chips, "--label-fraction", "0.1", "--max-steps", "1",
                                     "--out", tmp_path / "m", *FAST])
    info = read_meta(tmp_path / "m")["training"]["labels"]
    assert info["train_chips_used"] == len(tenth) and sum(info["train_chips_per_class"].values()) == len(tenth)
    assert events[-1]["summary"]["task"] == "classification"


def test_per_band_encoder_averages_band_features():
    torch.manual_seed(0)
    net = ClassifierNet("resnet18", 4, 3, "mlp", per_band=True).eval()
    x = torch.randn(2, 4, 32, 32)
    expected = torch.stack([net.encoder(x[:, i:i + 1]) for i in range(4)]).mean(0)
    torch.testing.assert_close(net.features(x), expected)
    assert net.encoder.conv1.in_channels == 1
