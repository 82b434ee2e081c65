"""``eo-ssl predict``: a model package + Sentinel-1/2 rasters -> a land-cover map (and confidence) over the AOI; with
``--scenes`` one map per scene and their mosaic (:mod:`backend.predict.region`). How one map is made:
:mod:`backend.predict.scene`.
"""

from __future__ import annotations

import argparse
from typing import Any

from backend import options
from backend.errors import EoSslError
from backend.events import Events
from backend.predict.region import run_region, wants_processes
from backend.predict.scene import check_outputs, load_predictor, map_scene


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options, declared in :mod:`backend.options` (the raster inputs are prepare's)."""
    options.add_arguments(p, "predict")


def run(args: argparse.Namespace, events: Events) -> dict[str, Any]:
    if getattr(args, "scenes", None):
        return run_region(args, events)
    if not args.out:
        raise EoSslError("bad_argument", "predict needs --out (one map) or --scenes with --out-dir (many).",
                         "Give --out MAP.tif.")
    if args.out_dir or args.confidence_maps:
        raise EoSslError("bad_argument", "--out-dir and --confidence-maps go with --scenes.",
                         "Give --scenes, or --out MAP.tif for one map.")
    if wants_processes(args):
        raise EoSslError("bad_argument", f"--devices {args.devices} --num-nodes {args.num_nodes}: several processes "
                         "map several scenes.", "Give --scenes (and --out-dir), or one device (e.g. --devices auto).")
    out, conf_path, outputs = check_outputs(args)
    for o in outputs:
        o.log_swept(events.log)
    pred = load_predictor(args, events)
    return map_scene(pred, args, out, conf_path, outputs, events)
