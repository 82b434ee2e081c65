"""Running one backend command for a Processing algorithm: ``python -m backend <command> ... --events`` through
:class:`~qgis_plugin.backend_runner.BackendRunner`, its events forwarded to ``feedback`` (progress, text, log),
Cancel honoured, and a backend ``error`` turned into a :class:`QgsProcessingException` in the plugin's words
(:mod:`..messages`).

Where QGIS runs an algorithm: from the toolbox and the eo-ssl dialog in a background task (a worker thread: the
algorithms do not declare ``FlagNoThreading``); QGIS 3.22 runs graphical models (``QgsProcessingModelAlgorithm``
always carries ``FlagNoThreading``) and the batch dialog (a loop calling ``run`` on the main thread) on the main
thread. There the backend is followed from a helper thread while the main thread keeps processing QGIS's events
(:func:`run_backend`), so QGIS stays responsive and Cancel works.
"""

from __future__ import annotations

import os
import queue
import shlex
import threading
import time
from pathlib import Path
from typing import Any

from qgis.core import QgsProcessingException, QgsProcessingFeedback
from qgis.PyQt.QtCore import QCoreApplication, QEventLoop, QThread, pyqtSignal

from .. import settings
from ..backend_runner import BackendRunner
from ..i18n import tr
from ..messages import error_text
from ..names import NO_BACKEND_HINT
from ..paths import ROOT

#: Seconds between SIGTERM and a hard kill on Cancel: the backend stops at its next safe point (and writes its
#: checkpoint) well before; the kill keeps the promise "stopped within 5 s" for a step that takes longer.
CANCEL_GRACE_S = 4.0


class EventFeedback(QgsProcessingFeedback):
    """A feedback that also re-emits every backend event (the dialog draws its loss curve from them) and the error
    a failed run reports. The signals may be emitted from a worker thread; connections to widgets are queued by Qt."""

    backendEvent = pyqtSignal(object)  # noqa: N815 - Qt naming
    errorReported = pyqtSignal(str)  # noqa: N815 - Qt naming

    def reportError(self, error, fatalError=False):  # noqa: N802, N803 - QGIS API
        super().reportError(error, fatalError)
        self.errorReported.emit(str(error))


def format_eta(seconds: Any) -> str:
    try:
        s = int(round(float(seconds)))
    except (TypeError, ValueError):
        return ""
    if s < 0:
        return ""
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def progress_text(event: dict[str, Any]) -> str:
    """``train step 12/100 · epoch 2 · loss 0.4312 · ETA 1:05``."""
    parts = []
    step, total = event.get("step"), event.get("total")
    stage = event.get("stage") or "step"
    if step is not None:
        parts.append(f"{stage} {step}/{total}" if total else f"{stage} {step}")
    if event.get("epoch") is not None:
        parts.append(f"epoch {event['epoch']}")
    loss = event.get("loss")
    if isinstance(loss, (int, float)):
        parts.append(f"loss {loss:.4g}")
    metrics = event.get("metrics")
    if isinstance(metrics, dict):
        parts += [f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in list(metrics.items())[:4]]
    eta = format_eta(event.get("eta_s"))
    if eta:
        parts.append(f"ETA {eta}")
    return " · ".join(parts)


class EventForwarder:
    """Backend events -> Processing feedback (progress bar, progress text, log). Thread-safe: stdout events and
    stderr lines arrive from two threads; feedback is touched by one at a time."""

    LOG_EVERY_S = 5.0

    def __init__(self, feedback: QgsProcessingFeedback) -> None:
        self.feedback = feedback
        self.lock = threading.Lock()
        self._last_logged = 0.0
        self._last_epoch: Any = None
        self.signal = getattr(feedback, "backendEvent", None)

    def __call__(self, event: dict[str, Any]) -> None:
        with self.lock:
            self._forward(event)
        if self.signal is not None:
            self.signal.emit(event)

    def _forward(self, event: dict[str, Any]) -> None:
        fb = self.feedback
        kind = event.get("event")
        if kind == "progress":
            step, total = event.get("step"), event.get("total")
            if isinstance(step, (int, float)) and isinstance(total, (int, float)) and total > 0:
                fb.setProgress(max(0.0, min(100.0, 100.0 * step / total)))
            text = progress_text(event)
            fb.setProgressText(text)
            now = time.monotonic()
            epoch = event.get("epoch")
            if now - self._last_logged >= self.LOG_EVERY_S or epoch != self._last_epoch or step == total:
                self._last_logged, self._last_epoch = now, epoch
                fb.pushInfo(text)
        elif kind == "log":
            level = event.get("level", "info")
            message = str(event.get("message", ""))
            if level in ("warning", "error"):
                fb.pushWarning(message)
            elif level == "debug":
                fb.pushDebugInfo(message)
            elif level == "stdout":
                fb.pushConsoleInfo(message)
            else:
                fb.pushInfo(message)
        elif kind == "warning":
            fb.pushWarning(tr("Warning [{code}]: {message}").format(code=event.get("code", ""),
                                                                    message=event.get("message", "")))
        elif kind == "artifact":
            fb.pushInfo(tr("Wrote {kind}: {path}").format(kind=event.get("kind", "output"), path=event.get("path", "")))
        elif kind == "done" and event.get("ok"):
            summary = event.get("summary") or {}
            for key, value in summary.items():
                fb.pushInfo(f"  {key}: {value}")
            if event.get("elapsed_s") is not None:
                fb.pushInfo(tr("Finished in {seconds} s").format(seconds=event["elapsed_s"]))

    def stderr(self, line: str) -> None:
        if not line.strip():
            return
        with self.lock:
            self.feedback.pushConsoleInfo(line)


def describe_command(argv: list[str]) -> str:
    from subprocess import list2cmdline

    return list2cmdline(argv) if os.name == "nt" else shlex.join(argv)


def backend_python_or_raise() -> str:
    found = settings.backend_python()
    if found is None:
        looked = "; ".join(f"{c.source}: {c.path}" for c in settings.looked_at()) or tr("nothing set")
        raise QgsProcessingException(
            tr("eo-ssl has no backend Python yet (looked at: {looked}).").format(looked=looked) + "\n"
            + tr("What to do: {hint}").format(hint=tr(NO_BACKEND_HINT)))
    return str(found.path)


def error_message(command: str, final: dict[str, Any]) -> str:
    """The text of the QgsProcessingException for a backend ``error`` event (:func:`..messages.error_text`)."""
    return error_text(command, final)


def on_main_thread() -> bool:
    app = QCoreApplication.instance()
    return app is not None and QThread.currentThread() == app.thread()


def _follow_in_this_thread(runner: BackendRunner, command: str, options, feedback, forwarder) -> dict[str, Any]:
    """A worker thread (a background task): block here; a watcher thread turns Cancel into SIGTERM."""
    finished = threading.Event()

    def watch_cancel() -> None:
        while not finished.wait(0.1):
            if feedback.isCanceled() and runner.running and not runner.cancelled:
                feedback.pushInfo(tr("Cancel: asking the backend to stop at its next safe point…"))
                runner.cancel()

    watcher = threading.Thread(target=watch_cancel, name=f"eo-ssl-cancel-{command}", daemon=True)
    watcher.start()
    try:
        return runner.run(command, options, on_event=forwarder, on_stderr=forwarder.stderr)
    finally:
        finished.set()
        watcher.join(timeout=2)


def _follow_pumping_events(runner: BackendRunner, command: str, options, feedback, forwarder,
                           pump_ms: int = 50) -> dict[str, Any]:
    """The main thread (a model or a batch run in QGIS 3.22): the backend is read by a helper thread; this thread
    hands its events to ``feedback`` (whose GUI must only be touched here) and keeps QGIS's event loop turning, so
    the window repaints, the map can be used and Cancel is seen."""
    inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["final"] = runner.run(command, options, on_event=lambda e: inbox.put(("event", e)),
                                          on_stderr=lambda line: inbox.put(("stderr", line)))
        except BaseException as exc:  # noqa: BLE001 - raised again on the main thread
            outcome["error"] = exc

    def drain() -> None:
        while True:
            try:
                kind, item = inbox.get_nowait()
            except queue.Empty:
                return
            if kind == "event":
                forwarder(item)
            else:
                forwarder.stderr(item)

    reader = threading.Thread(target=work, name=f"eo-ssl-run-{command}", daemon=True)
    reader.start()
    asked = False
    while reader.is_alive():
        drain()
        if feedback.isCanceled() and not asked and runner.running:
            asked = True
            feedback.pushInfo(tr("Cancel: asking the backend to stop at its next safe point…"))
            runner.cancel()
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, pump_ms)
        reader.join(pump_ms / 1000.0)
    drain()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["final"]


def run_backend(command: str, options: dict[str, Any], python: str, feedback: QgsProcessingFeedback | None,
                root: Path | str = ROOT, grace_s: float = CANCEL_GRACE_S) -> tuple[dict[str, Any], list[dict]]:
    """Run one backend command to its end; return (final ``done`` event, all events). Raises
    QgsProcessingException for a backend error, a crash or a cancel. On QGIS's main thread it keeps the event loop
    turning while it waits (see the module's docstring)."""
    feedback = feedback or QgsProcessingFeedback()
    runner = BackendRunner(python, root=root, grace_s=grace_s)
    argv = runner.build_command(command, options)
    feedback.pushCommandInfo(describe_command(argv))
    if feedback.isCanceled():
        raise QgsProcessingException(error_message(command, {"code": "cancelled"}))
    forwarder = EventForwarder(feedback)
    follow = _follow_pumping_events if on_main_thread() else _follow_in_this_thread
    final = follow(runner, command, options, feedback, forwarder)
    if final.get("event") != "done" or not final.get("ok", False):
        if runner.cancelled or feedback.isCanceled():
            final = {**final, "code": "cancelled"}
        raise QgsProcessingException(error_message(command, final))
    return final, list(runner.events)


def artifacts(events: list[dict[str, Any]], kind: str | None = None) -> list[str]:
    return [str(e.get("path")) for e in events
            if e.get("event") == "artifact" and (kind is None or e.get("kind") == kind)]
