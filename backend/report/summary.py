"""The one sentence an evaluation report opens with: the path to use, and what pre-training was worth, budget by
budget (where it helped and where it hurt: never the one budget where it looks best).

Pure functions over report rows (``report.json`` ``results``: path, kind, encoder, budget, metrics), so they are
tested on numbers alone.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def aggregate(rows: list[dict[str, Any]], metric: str = "miou") -> dict[tuple[str, float], dict[str, Any]]:
    """(path, budget value) -> mean, sd and per-seed values of ``metric``."""
    out: dict[tuple[str, float], dict[str, Any]] = {}
    for r in rows:
        v = r["metrics"].get(metric)
        entry = out.setdefault((r["path"], r["fraction"]), {"values": [], "kind": r["kind"], "encoder": r["encoder"],
                                                              "budget": r["budget"], "n_train": r["n_train"]})
        if v is not None:
            entry["values"].append(float(v))
    for entry in out.values():
        vals = entry["values"]
        entry["mean"] = float(np.mean(vals)) if vals else None
        entry["sd"] = float(np.std(vals)) if len(vals) > 1 else 0.0
    return out


def labels_worth(pre: list[tuple[float, float]], rnd: list[tuple[float, float]]) -> list[dict[str, Any]]:
    """For each (budget, score) of the pre-trained curve: the budget at which the random-init curve reaches the same
    score (linear interpolation in log budget), or None when it never does / already does at the smallest."""
    rnd = sorted(rnd)
    out = []
    for b, s in sorted(pre):
        match = None
        if rnd and s >= rnd[0][1]:
            for (b0, s0), (b1, s1) in zip(rnd, rnd[1:]):
                if s0 <= s <= s1 and s1 > s0:
                    t = (s - s0) / (s1 - s0)
                    match = math.exp(math.log(b0) + t * (math.log(b1) - math.log(b0)))
                    break
            if match is None and s <= rnd[-1][1]:
                match = rnd[-1][0]
        out.append({"budget": b, "score": s, "random_budget_for_same_score": match,
                    "beyond_random": bool(rnd and s > rnd[-1][1])})
    return out


def summary_sentence(rows: list[dict[str, Any]], unit: str, metric: str = "miou") -> dict[str, Any]:
    """The sentence report.html opens with, and the numbers behind it."""
    agg = aggregate(rows, metric)
    top = max(b for _, b in agg)
    at_top = {p: e for (p, b), e in agg.items() if b == top and e["mean"] is not None}
    if not at_top:
        return {"text": "No path could be scored.", "best": None}
    best_path, best = max(at_top.items(), key=lambda kv: kv[1]["mean"])
    classic = {p: e for p, e in at_top.items() if e["kind"] == "classic"}
    best_classic = max(classic.items(), key=lambda kv: kv[1]["mean"]) if classic else None
    budget_text = ("all the training parcels" if unit == "fraction" and top >= 1 else
                   f"{best['budget']} of the training labels" if unit == "fraction" else
                   f"{int(top)} parcels per class")
    real = next((r.get("train_per_class") or {} for r in rows if r["path"] == best_path and r["fraction"] == top), {})
    short = {c: n for c, n in real.items() if unit != "fraction" and n < top}
    if short:  # the store held fewer: say what the budget really was, per class
        budget_text += (f" ({best['n_train']} parcels in all: only "
                        + ", ".join(f"{n} of {c}" for c, n in short.items()) + ")")
    not_scored = _not_scored(rows)
    held_out = "held-out parcels"
    if not_scored:
        n_classes = len(rows[0]["metrics"].get("support") or {})
        held_out += (f" of {n_classes - len(not_scored)} of the {n_classes} classes (none of "
                     f"{', '.join(not_scored)} to test on)")
    name = METRIC_NAMES.get(metric, metric)
    text = f"Use {best_path}: with {budget_text} it scores {name} {best['mean']:.3f} on {held_out}"
    if best_classic is not None and best_classic[0] != best_path:
        diff = best["mean"] - best_classic[1]["mean"]
        text += f", {diff:+.3f} against the best classic classifier ({best_classic[0]}, {best_classic[1]['mean']:.3f})"
    elif best_classic is not None:
        text += " (a classic classifier: no deep-learning path beat it here)"
    text += "."
    worth = _pretraining_worth(agg, unit, metric)
    if worth:
        text += " " + worth["text"]
    return {"text": text, "best": best_path, "best_score": best["mean"], "budget": top,
            "best_classic": best_classic[0] if best_classic else None, "pretraining": worth,
            "budget_short": short, "not_scored": not_scored}


def _not_scored(rows: list[dict[str, Any]]) -> list[str]:
    """Classes no row had a held-out pixel of (``metrics.support`` 0 everywhere): no score says anything about
    them."""
    supports = [r["metrics"].get("support") or {} for r in rows]
    names = list(supports[0]) if supports else []
    return [c for c in names if all(int(s.get(c, 0)) == 0 for s in supports)]


METRIC_NAMES = {"miou": "mIoU", "f1_macro": "macro F1", "oa": "overall accuracy"}


def _pretraining_worth(agg: dict[tuple[str, float], dict[str, Any]], unit: str, metric: str) -> dict[str, Any] | None:
    """What the pre-trained encoder was worth in labels: the U-Net (or, for chips, the probe) from each package against
    the same path from random initialisation."""
    kinds = ("unet", "pixel", "probe")
    for kind in kinds:
        curves: dict[str, list[tuple[float, float]]] = {}
        for (_, b), e in agg.items():
            if e["kind"] == kind and e["mean"] is not None:
                curves.setdefault(str(e["encoder"]), []).append((b, e["mean"]))
        rnd = next((v for k, v in curves.items() if k.startswith("random")), None)
        pres = {k: v for k, v in curves.items() if not k.startswith("random")}
        if rnd is None or not pres:
            continue
        enc, pre = next(iter(pres.items()))
        worth = labels_worth(pre, rnd)
        what = {"unet": "U-Net", "pixel": "pixel classifier + embedding", "probe": "linear probe"}[kind]
        fmt = (lambda b: f"{b:.0%}") if unit == "fraction" else (lambda b: f"{b:.1f} parcels per class")
        deltas = [p[1] - dict(rnd).get(p[0], float("nan")) for p in sorted(pre)]
        name = METRIC_NAMES.get(metric, metric)
        per_budget = []
        for w, (b, d) in zip(worth, zip(sorted(b for b, _ in pre), deltas)):
            if not math.isfinite(d):
                continue
            r = w["random_budget_for_same_score"]
            ratio = f", worth {r / b:.1f}x the labels" if d > 0 and r and r > b * 1.05 else ""
            per_budget.append(f"{fmt(b)}: {d:+.3f}{ratio}")
        helped = sum(1 for d in deltas if math.isfinite(d) and d > 0)
        hurt = sum(1 for d in deltas if math.isfinite(d) and d < 0)
        verdict = ("helped at every budget" if helped and not hurt else "hurt at every budget" if hurt and not helped
                   else f"helped at {helped} and hurt at {hurt} of {helped + hurt} budgets" if helped or hurt
                   else "made no difference")
        # every budget is said: where it helped and where it hurt (no best-budget pick)
        text = (f"Pre-training ({enc}) {verdict} for the {what}, {name} against random init per budget: "
                + "; ".join(per_budget) + ".")
        return {"kind": kind, "encoder": enc, "curve": worth, "delta_per_budget": deltas, "text": text}
    return None
