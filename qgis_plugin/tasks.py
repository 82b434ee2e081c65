"""Work that must not block QGIS's main thread (probing the backend imports torch in its Python: seconds; creating
the environment: minutes), as QgsTasks in QGIS's task manager, with their result handed back on the main thread."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qgis.core import QgsApplication, QgsTask

from .i18n import tr


class CallTask(QgsTask):
    """Run ``fn(task)`` off the main thread; ``result`` holds its return value, ``error`` what it raised."""

    def __init__(self, description: str, fn: Callable[[QgsTask], Any], can_cancel: bool = True) -> None:
        super().__init__(description, QgsTask.CanCancel if can_cancel else QgsTask.Flags())
        self.fn = fn
        self.result: Any = None
        self.error: str | None = None

    def run(self) -> bool:
        try:
            self.result = self.fn(self)
            return True
        except Exception as exc:  # noqa: BLE001 - reported by the caller, never raised into QGIS
            self.error = f"{type(exc).__name__}: {exc}"
            return False


def start(description: str, fn: Callable[[QgsTask], Any], on_done: Callable[[CallTask], None],
          can_cancel: bool = True) -> CallTask:
    """Start ``fn`` in the task manager; ``on_done(task)`` runs on the main thread when it has ended (completed,
    failed or cancelled). Keep the returned task referenced until then."""
    task = CallTask(description, fn, can_cancel)
    task.taskCompleted.connect(lambda: on_done(task))
    task.taskTerminated.connect(lambda: on_done(task))
    QgsApplication.taskManager().addTask(task)
    return task


def probe(on_done: Callable[[CallTask], None], python: str | None = None,
          extra: Callable[[], Any] | None = None) -> CallTask:
    """The backend probe (:func:`.settings.probe_backend`: seconds, it imports torch in the backend's Python) in a
    task: of ``python``, else of the configured backend. With ``extra`` the task's result is ``(report, extra())``
    (what the diagnostics show beside the report)."""
    from . import settings

    def work(_task: QgsTask) -> Any:
        report = settings.probe_backend(python=python)
        return (report, extra()) if extra is not None else report

    return start(tr("eo-ssl: checking the backend environment"), work, on_done)
