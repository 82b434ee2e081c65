"""BackendRunner: the real subprocess mechanism (``python -m backend ...`` with cwd/PYTHONPATH = the root)."""

from __future__ import annotations

import sys
import textwrap
import time
from pathlib import Path

import pytest

from qgis_plugin.backend_runner import SCRUBBED_ENV, BackendRunner, backend_env, options_to_args

FAKE_MAIN = r'''
import json, os, signal, sys, time

def emit(event, **fields):
    sys.stdout.write(json.dumps({"event": event, "v": 1, **fields}) + "\n")
    sys.stdout.flush()

argv = sys.argv[1:]
command = argv[0]
assert argv[-1] == "--events", argv
emit("start", command=command, args=argv[1:-1], cwd=os.getcwd(), pythonpath=os.environ.get("PYTHONPATH"),
     proj_lib=os.environ.get("PROJ_LIB"))
if command == "count":
    n = int(argv[argv.index("--n") + 1])
    for i in range(1, n + 1):
        emit("progress", step=i, total=n, loss=1.0 / i)
    print("a stray line on stdout")
    sys.stderr.write("some library chatter on stderr\n")
    emit("artifact", kind="model", path="/tmp/model")
    emit("done", ok=True, summary={"n": n})
elif command == "fail":
    emit("error", code="bad_input", message="the input is bad", hint="give a good one")
    emit("done", ok=False, summary={})
    sys.exit(2)
elif command == "crash":
    sys.stderr.write("Traceback: something broke\n")
    sys.exit(1)
elif command == "sleep":
    stopping = []
    if "--ignore-term" in argv:
        signal.signal(signal.SIGTERM, lambda *a: None)
    else:
        signal.signal(signal.SIGTERM, lambda *a: stopping.append(1))
    emit("log", message="sleeping", level="info")
    for _ in range(600):
        if stopping:
            emit("error", code="cancelled", message="cancelled by the user", hint="resume with --resume")
            emit("done", ok=False, summary={})
            sys.exit(130)
        time.sleep(0.05)
    emit("done", ok=True, summary={})
'''


@pytest.fixture()
def fake_root(tmp_path: Path) -> Path:
    """A root holding a tiny ``backend`` package that speaks the event protocol."""
    pkg = tmp_path / "root" / "backend"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "__main__.py").write_text(textwrap.dedent(FAKE_MAIN))
    return pkg.parent


def test_build_command_is_an_argument_list() -> None:
    runner = BackendRunner("/usr/bin/python3")
    cmd = runner.build_command("prepare", {"s2": [Path("a b.tif"), "c.tif"], "out": "x;rm -rf /", "overwrite": True,
                                           "seed": None, "resume": False, "val_fraction": 0.2})
    assert cmd == ["/usr/bin/python3", "-m", "backend", "prepare", "--s2", "a b.tif", "c.tif",
                   "--out", "x;rm -rf /", "--overwrite", "--val-fraction", "0.2", "--events"]
    assert runner.build_command("train", ["--epochs", 3]) == [
        "/usr/bin/python3", "-m", "backend", "train", "--epochs", "3", "--events"]
    for bad in ("", "--help", "two words"):
        with pytest.raises(ValueError):
            runner.build_command(bad)
    assert options_to_args({"s1": []}) == []


def test_backend_env_scrubs_qgis_python_and_proj() -> None:
    base = {"PATH": "/usr/bin", "PYTHONHOME": "/qgis/apps/Python39", "PROJ_LIB": "/qgis/share/proj",
            "GDAL_DATA": "/qgis/share/gdal", "PYTHONPATH": "/qgis/python", "HOME": "/root"}
    env = backend_env("/repo", base)
    assert env["PYTHONPATH"] == "/repo"
    assert env["PATH"] == "/usr/bin" and env["HOME"] == "/root"
    assert not {"PYTHONHOME", "PROJ_LIB", "GDAL_DATA"} & set(env)
    assert "PROJ_DATA" in SCRUBBED_ENV


def test_run_streams_events_and_returns_done(fake_root: Path) -> None:
    seen: list[dict] = []
    stderr: list[str] = []
    runner = BackendRunner(sys.executable, root=fake_root, env={"PATH": "/usr/bin:/bin", "PROJ_LIB": "/elsewhere"})
    final = runner.run("count", {"n": 5}, on_event=seen.append, on_stderr=stderr.append)
    assert final["event"] == "done" and final["ok"] is True and final["summary"] == {"n": 5}
    assert final["returncode"] == 0
    kinds = [e["event"] for e in seen]
    assert kinds == ["start", "progress", "progress", "progress", "progress", "progress", "log", "artifact", "done"]
    start = seen[0]
    assert start["args"] == ["--n", "5"]
    assert Path(start["cwd"]) == fake_root
    assert start["pythonpath"] == str(fake_root)
    assert start["proj_lib"] is None
    assert [e["step"] for e in seen if e["event"] == "progress"] == [1, 2, 3, 4, 5]
    assert seen[6] == {**seen[6], "message": "a stray line on stdout", "level": "stdout"}
    assert stderr == ["some library chatter on stderr"]
    assert runner.events == seen
    assert not runner.running


def test_run_returns_the_error_event(fake_root: Path) -> None:
    final = BackendRunner(sys.executable, root=fake_root).run("fail")
    assert final["event"] == "error"
    assert (final["code"], final["message"], final["hint"]) == ("bad_input", "the input is bad", "give a good one")
    assert final["returncode"] == 2


def test_a_crash_becomes_an_error_with_the_stderr_tail(fake_root: Path) -> None:
    seen: list[dict] = []
    final = BackendRunner(sys.executable, root=fake_root).run("crash", on_event=seen.append)
    assert final["event"] == "error" and final["code"] == "backend_crashed"
    assert "something broke" in final["detail"]
    assert final["returncode"] == 1
    assert seen[-1]["code"] == "backend_crashed"


def test_missing_python_is_an_error_event(tmp_path: Path) -> None:
    final = BackendRunner(tmp_path / "no-python", root=tmp_path).run("prepare")
    assert final["event"] == "error" and final["code"] == "backend_not_started"
    assert "EO_SSL_PYTHON" in final["hint"] and "Raster > eo-ssl > Set up the backend…" in final["hint"]


def _cancel_soon(runner: BackendRunner, delay_s: float) -> None:
    import threading

    def later() -> None:
        deadline = time.monotonic() + 10
        while not runner.events and time.monotonic() < deadline:  # wait until it has started
            time.sleep(0.02)
        time.sleep(delay_s)
        runner.cancel()

    threading.Thread(target=later, daemon=True).start()


def test_cancel_stops_cleanly(fake_root: Path) -> None:
    runner = BackendRunner(sys.executable, root=fake_root)
    _cancel_soon(runner, 0.2)
    t0 = time.monotonic()
    final = runner.run("sleep")
    assert time.monotonic() - t0 < 5
    assert final["event"] == "error" and final["code"] == "cancelled"
    assert final["returncode"] == 130
    assert runner.cancelled


def test_cancel_kills_a_backend_that_ignores_sigterm(fake_root: Path) -> None:
    runner = BackendRunner(sys.executable, root=fake_root, grace_s=1.0)
    _cancel_soon(runner, 0.2)
    t0 = time.monotonic()
    final = runner.run("sleep", ["--ignore-term"])
    elapsed = time.monotonic() - t0
    assert 1.0 <= elapsed < 5, elapsed
    assert final["event"] == "error" and final["code"] == "cancelled"
    assert final["returncode"] == -9


def test_default_grace_is_five_seconds() -> None:
    assert BackendRunner(sys.executable).grace_s == 5.0


def test_real_backend_reports_a_bad_input_as_an_error_event(repo_root: Path, backend_python: str,
                                                            tmp_path: Path) -> None:
    """The real ``python -m backend`` through the runner: no input at all is a clear error, exit code 2."""
    seen: list[dict] = []
    final = BackendRunner(backend_python, root=repo_root).run("prepare", {"out": tmp_path / "store"},
                                                               on_event=seen.append)
    assert seen[0]["event"] == "start" and seen[0]["command"] == "prepare"
    assert final["event"] == "error", final
    assert final["code"] and final["message"] and final["hint"]
    assert final["returncode"] == 2
    assert seen[-1]["event"] == "done" and seen[-1]["ok"] is False
    assert not (tmp_path / "store").exists()
