"""``evaluate --protocol compare`` end to end on real data, and the numbers behind its opening sentence.

- Flanders (36 S2 + 40 S1 dates, LPIS parcels): every path (classic, pixel + embedding, U-Net from random and from a
  package) is trained on the same parcels and scored on the held-out ones; report.html opens with the sentence that
  names the best path, and that path is the best of report.json.
- EuroSAT chips: band statistics + classic classifiers against probes and kNN on the encoders' features.
- :mod:`backend.report.summary` on hand-made curves: labels worth, "no labels bought", the best path.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backend.report.summary import labels_worth, summary_sentence
from tests.backend.model_helpers import FAST, cached, command_ok, eurosat_store
from tests.backend.test_pixel_classifier import flanders_store, random_encoder_package


def _row(path: str, kind: str, encoder: str | None, budget: float, score: float, seed: int = 0) -> dict:
    return {"path": path, "kind": kind, "encoder": encoder, "fraction": budget, "budget": f"{budget:g}",
            "n_train": int(budget * 10), "seed": seed, "metrics": {"miou": score}}


def test_labels_worth_interpolates_the_random_curve() -> None:
    rnd = [(0.25, 0.40), (0.5, 0.50), (1.0, 0.60)]
    pre = [(0.25, 0.50), (0.5, 0.55), (1.0, 0.65)]
    worth = labels_worth(pre, rnd)
    assert worth[0]["random_budget_for_same_score"] == pytest.approx(0.5)  # 0.50 is random's score at 0.5
    assert 0.5 < worth[1]["random_budget_for_same_score"] < 1.0
    assert worth[2]["random_budget_for_same_score"] is None and worth[2]["beyond_random"]


def test_summary_names_the_best_path_and_what_pretraining_bought() -> None:
    rows = []
    for b, (rf, unet_r, unet_p) in {0.25: (0.45, 0.40, 0.50), 0.5: (0.50, 0.50, 0.58), 1.0: (0.55, 0.60, 0.66)}.items():
        rows += [_row("random forest (spectra)", "classic", None, b, rf),
                 _row("U-Net (random)", "unet", "random", b, unet_r),
                 _row("U-Net (moco-v2: pre)", "unet", "moco-v2: pre", b, unet_p)]
    s = summary_sentence(rows, "fraction")
    assert s["best"] == "U-Net (moco-v2: pre)" and s["best_classic"] == "random forest (spectra)"
    assert s["text"].startswith("Use U-Net (moco-v2: pre): with all the training parcels it scores mIoU 0.660")
    assert "+0.110 against the best classic classifier (random forest (spectra), 0.550)" in s["text"]
    assert "helped at every budget for the U-Net" in s["text"]
    assert "25%: +0.100, worth 2.0x the labels" in s["text"] and "100%: +0.060" in s["text"]


def test_summary_says_where_pretraining_helped_and_where_it_hurt() -> None:
    """No best-budget pick: a probe that wins at 2 chips a class and loses at 5 and 10 is reported as such."""
    rows = []
    for b, (rnd, pre) in {2: (0.30, 0.40), 5: (0.50, 0.45), 10: (0.60, 0.55)}.items():
        rows += [_row("random forest (band mean/std)", "classic", None, b, 0.7),
                 _row("linear probe (random)", "probe", "random", b, rnd),
                 _row("linear probe (p)", "probe", "p", b, pre)]
    s = summary_sentence(rows, "per class")
    assert "helped at 1 and hurt at 2 of 3 budgets for the linear probe" in s["text"]
    assert "2.0 parcels per class: +0.100" in s["text"] and "5.0 parcels per class: -0.050" in s["text"]
    assert "worth about" not in s["text"]


def test_summary_says_when_pretraining_bought_nothing() -> None:
    rows = []
    for b in (0.5, 1.0):
        rows += [_row("logistic regression (spectra)", "classic", None, b, 0.7),
                 _row("U-Net (random)", "unet", "random", b, 0.5), _row("U-Net (p)", "unet", "p", b, 0.45)]
    s = summary_sentence(rows, "fraction")
    assert s["best"] == "logistic regression (spectra)"
    assert "no deep-learning path beat it" in s["text"]
    assert "hurt at every budget for the U-Net, mIoU against random init per budget: 50%: -0.050; 100%: -0.050" \
        in s["text"]


@pytest.mark.slow
def test_compare_on_flanders_names_the_winner(shared_data: Path, tmp_path_factory: pytest.TempPathFactory,
                                              tmp_path: Path) -> None:
    base = tmp_path_factory.getbasetemp()
    store = flanders_store(shared_data, base)
    pkg = cached(base, "flanders-encoder-package", lambda out: random_encoder_package(store, out, seed=1))
    out = tmp_path / "report"
    # one date (the pixel classifiers' every-date features are tested in test_pixel_classifier): with all 76 dates
    # the cross-validated choice alone took 23 min on 2 busy cores
    command_ok("evaluate", ["--data", store, "--init", pkg, "--label-fractions", "1,0.5", "--max-steps", "4",
                            "--crop", "64", "--samples-per-epoch", "8", "--max-train-pixels", "800",
                            "--date", "2018-07-15", "--embedding-dim", "4", "--out", out, *FAST])
    report = json.loads((out / "report.json").read_text())
    assert report["protocol"] == "compare" and report["scored_on"].startswith("the test split")
    paths = {r["path"] for r in report["results"]}
    assert {"logistic regression (spectra)", "gradient boosting (spectra)", "random forest (spectra)",
            "U-Net (random)"} <= paths
    assert any(p.startswith("pixel + embedding") for p in paths) and any(p.startswith("U-Net (byol") for p in paths)
    at_top = {a["path"]: a["mean"] for a in report["aggregate"] if a["value"] == 1.0}
    best = max(at_top, key=at_top.get)
    assert report["summary"]["best"] == best
    html = (out / "report.html").read_text()
    assert f"Use {best}" in html and html.index(f"Use {best}") < html.index("<table")
    # the same parcels for every path at a budget, and the budgets nested
    n = {r["path"]: r["n_train"] for r in report["results"] if r["fraction"] == 0.5}
    assert len(set(n.values())) == 1


@pytest.mark.slow
def test_compare_on_eurosat_chips(shared_data: Path, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    store = eurosat_store(shared_data, tmp_path_factory.getbasetemp())
    out = tmp_path / "report"
    command_ok("evaluate", ["--data", store, "--parcels-per-class", "3,6", "--seeds", "0,1", "--k", "5",
                            "--out", out, *FAST])
    report = json.loads((out / "report.json").read_text())
    paths = {r["path"] for r in report["results"]}
    assert "random forest (band mean/std)" in paths and "linear probe (random)" in paths and "kNN (random)" in paths
    assert {r["seed"] for r in report["results"]} == {0, 1}
    assert all(len(a["values"]) == 2 for a in report["aggregate"])
    assert report["summary"]["text"].startswith("Use ")
