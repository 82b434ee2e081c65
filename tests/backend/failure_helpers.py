"""What the failure tests (test_failures.py: one row per way a run can go wrong; test_signals.py: a signal at any
moment) share: the real data and eo-ssl outputs they run against (``failure_env``, built once a session with the
commands themselves), running the CLI as a child process, and the checks that nothing was lost (``sha256_tree``)."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from backend.events import TEST_SIGNAL_AT
from tests.backend.data_helpers import REPO, parse_events, prepare_ok
from tests.backend.model_helpers import command_ok

SAMPLE = REPO / "resources" / "sample" / "worldcereal_flanders_2018"
#: three dates of the sample: enough for every command, fast to prepare
DATES = ("S2_20170824.tif", "S2_20180119.tif", "S2_20180628.tif")
#: the top-left 32 x 32 px of the sample, where every pixel of 2018-11-05 is nodata (clouds masked)
CLOUDED_BOX = "501360,5629360,501680,5629680"
#: the fastest training settings that still train (one CPU process, a 10-layer ResNet, 32 px crops)
TINY = ("--encoder", "resnet10t", "--crop", "32", "--num-workers", "0", "--devices", "cpu")
#: a temporary name (``OUT.tmp-PID``, ``.NAME.part-PID.tif``, ``OUT.old-PID``...) and its process id
TEMP = re.compile(r"^.*\.(?:tmp|part|old)-(\d+)(?:\..*)?$")


def sha256_tree(path: Path) -> str:
    """The sha256 of a file, or of a folder's file names and contents (sorted)."""
    h = hashlib.sha256()
    if path.is_file():
        h.update(path.read_bytes())
        return h.hexdigest()
    for f in sorted(p for p in path.rglob("*")):
        h.update(str(f.relative_to(path)).encode())
        if f.is_file() and not f.is_symlink():
            h.update(f.read_bytes())
    return h.hexdigest()


def run_cli(argv: list[str], timeout: int = 300, signal_at: str = "") -> tuple[int, list[dict[str, Any]], str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", TEST_SIGNAL_AT)}
    env["PYTHONPATH"] = str(REPO)
    if signal_at:
        env[TEST_SIGNAL_AT] = signal_at
    proc = subprocess.run([sys.executable, "-m", "backend", *argv, "--events"], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=timeout)
    return proc.returncode, parse_events(proc.stdout), proc.stderr


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, copy_function=os.link)  # hard links: the store's arrays are not copied
    return dst


def fill(text: str, values: dict[str, Any]) -> str:
    """``text`` with ``{name}`` filled from ``values`` (paths as text)."""
    return text.format(**{k: str(v) for k, v in values.items()})


_ENVS: dict[Path, dict[str, Any]] = {}


def failure_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The real data and the eo-ssl outputs the failure tests run against (built with the commands themselves, once
    a session: the modules that use it share it)."""
    key = tmp_path_factory.getbasetemp()
    if key not in _ENVS:
        _ENVS[key] = _build_env(tmp_path_factory)
    return _ENVS[key]


def _build_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("failures")
    d = root / "flanders"
    shutil.copytree(SAMPLE, d)
    store = root / "store"
    prepare_ok(["--s2", *[d / "s2" / f for f in DATES], "--parcels", d / "parcels.gpkg", "--class-field", "ct_name",
                "--out", store])
    model = root / "model"
    command_ok("finetune", ["--data", store, "--out", model, "--encoder", "resnet10t", "--crop", "32",
                            "--max-steps", "1", "--batch-size", "2", "--num-workers", "0", "--devices", "cpu"])
    dataset = root / "dataset"
    command_ok("export-dataset", ["--data", store, "--parcels", d / "parcels.gpkg", "--class-field", "ct_name",
                                  "--chip", "16", "--out", dataset])
    labelled = root / "labelled.gpkg"
    command_ok("label-parcels", ["--map", d / "labels.tif", "--parcels", d / "parcels.gpkg", "--out", labelled])

    docs = root / "documents"
    docs.mkdir()
    (docs / "thesis.txt").write_text("years of work")
    (docs / "checkpoints").mkdir()
    (docs / "checkpoints" / "draft.txt").write_text("more work")
    note = root / "note.txt"
    note.write_text("a note")
    mixed = copy_tree(store, root / "mixed")
    (mixed / "notes.txt").write_text("the user's notes, kept in the store folder")
    copy_tif = root / "copy.tif"
    shutil.copy(d / "s2" / DATES[0], copy_tif)
    user_tif = root / "photo.tif"
    shutil.copy(d / "s2" / DATES[1], user_tif)
    styled = root / "styled"
    styled.mkdir()
    (styled / "map.qml").write_text("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n<qgis/>\n")
    user_gpkg = root / "mine.gpkg"
    shutil.copy(d / "parcels.gpkg", user_gpkg)
    user_onnx = root / "theirs.onnx"
    user_onnx.write_bytes(b"an ONNX model from somewhere else")
    weights = root / "weights"
    weights.mkdir()
    os.link(model / "weights.safetensors", weights / "encoder.safetensors")

    truncated = copy_tree(store, root / "truncated")
    s2 = truncated / "s2.npy"
    data = s2.read_bytes()
    s2.unlink()  # a new file: the hard-linked original stays whole
    s2.write_bytes(data[:len(data) // 2])
    no_manifest = copy_tree(store, root / "no_manifest")
    text = (no_manifest / "manifest.json").read_text()
    (no_manifest / "manifest.json").unlink()
    (no_manifest / "manifest.json").write_text(text[:len(text) // 2])
    no_arch = copy_tree(model, root / "no_arch")
    meta = json.loads((no_arch / "model.json").read_text())
    del meta["architecture"]
    (no_arch / "model.json").unlink()
    (no_arch / "model.json").write_text(json.dumps(meta))

    import pyogrio.raw
    import shapely

    meta_p, _, wkb, fields = pyogrio.raw.read(d / "parcels.gpkg")
    geoms = shapely.from_wkb(wkb)
    names = fields[list(meta_p["fields"]).index("ct_name")]
    for name, geo in (("points", shapely.centroid(geoms)),
                      ("outside", shapely.transform(geoms, lambda xy: xy + [100_000.0, 0.0]))):
        pyogrio.raw.write(root / f"{name}.gpkg", shapely.to_wkb(geo), [names], ["ct_name"], driver="GPKG",
                          layer=name, geometry_type="Point" if name == "points" else "Polygon", crs="EPSG:32631")
    ring = root / "ring.geojson"
    ring.write_text(json.dumps({"type": "FeatureCollection", "crs": {"type": "name", "properties": {
        "name": "urn:ogc:def:crs:EPSG::32631"}}, "features": [
        {"type": "Feature", "properties": {"name": "ok"}, "geometry": {"type": "Polygon", "coordinates": [[
            [501400, 5629100], [501900, 5629100], [501900, 5629600], [501400, 5629100]]]}},
        {"type": "Feature", "properties": {"name": "two points"}, "geometry": {"type": "Polygon", "coordinates": [[
            [501400, 5629100], [501900, 5629600]]]}}]}))
    run = root / "run"  # a pre-training run's folder with its checkpoint, to --resume
    command_ok("pretrain", ["--data", store, "--method", "byol", *TINY, "--batch-size", "4", "--max-steps", "1",
                            "--out", run])
    pickled_run, cut_run = copy_tree(run, root / "pickled_run"), copy_tree(run, root / "cut_run")
    ckpt = "checkpoints/last.ckpt"
    _rewrite(pickled_run / ckpt, pickle.dumps({"state_dict": {}, "loops": {}, "evil": _Payload()}))
    _rewrite(cut_run / ckpt, (run / ckpt).read_bytes()[:1000])
    mixed_model = copy_tree(model, root / "mixed_model")
    (mixed_model / "notes.txt").write_text("the user's notes, kept beside the model")
    one_class, no_cabbages = _resplit(store, root / "one_class", keep="Permanent grass crops"), \
        _resplit(store, root / "no_cabbages", drop="Cabbages")
    return {"R": root, "D": d, "d0": DATES[0], "d1": DATES[1], "store": store, "model": model, "dataset": dataset,
            "labelled": labelled, "docs": docs, "note": note, "mixed": mixed, "copy_tif": copy_tif,
            "user_tif": user_tif, "user_gpkg": user_gpkg, "user_onnx": user_onnx, "weights": weights,
            "truncated": truncated, "no_manifest": no_manifest,
            "no_arch": no_arch, "points": root / "points.gpkg", "outside": root / "outside.gpkg", "ring": ring,
            "box": CLOUDED_BOX, "busy": root / "busy", "tiny": " ".join(TINY), "pickled_run": pickled_run,
            "cut_run": cut_run, "mixed_model": mixed_model, "one_class": one_class, "no_cabbages": no_cabbages}


class _Payload:
    def __reduce__(self):  # what a malicious checkpoint would run when unpickled
        return (print, ("this must never run",))


def _rewrite(path: Path, data: bytes) -> None:
    """Replace a hard-linked file with new content (the original it shares data with stays whole)."""
    path.unlink()
    path.write_bytes(data)


def _resplit(store: Path, out: Path, keep: str | None = None, drop: str | None = None) -> Path:
    """A copy of ``store`` whose training and validation splits hold only class ``keep`` (the other parcels' pixels
    move to the test split: a validation split too small to score on joins the training of a pixel classifier), or
    every class but ``drop`` (its training pixels move to the validation split)."""
    import numpy as np

    copy = copy_tree(store, out)
    ids = {c["name"]: c["id"] for c in json.loads((store / "manifest.json").read_text())["labels"]["classes"]}
    labels, split = np.load(store / "labels.npy"), np.load(store / "split.npy")
    moved = (labels != ids[keep]) if keep else (labels == ids[drop])
    if keep:
        split[np.isin(split, (1, 2)) & moved] = 3
    else:
        split[(split == 1) & moved] = 2
    (copy / "split.npy").unlink()
    np.save(copy / "split.npy", split)
    return copy
