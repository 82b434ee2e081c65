"""Run a chain of eo-ssl Processing algorithms in the background (the dialog's engine).

Each step is a :class:`QgsProcessingAlgRunnerTask` in QGIS's task manager (so QGIS stays usable and the task shows
in the status bar), with an :class:`EventFeedback` whose signals reach the main thread queued. When a step
succeeds, its outputs are loaded into the project by Processing's own ``handleAlgorithmResults`` on the main
thread, which also runs the layer post-processors (class style of the prediction, confidence ramp, parcel
categories). The next step starts only then.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from qgis.core import (
    QgsApplication,
    QgsProcessingAlgRunnerTask,
    QgsProcessingContext,
    QgsProject,
)
from qgis.PyQt.QtCore import QObject, pyqtSignal

from .algorithms.backend_run import EventFeedback, progress_text
from .i18n import tr


@dataclass
class Step:
    alg_id: str
    params: dict[str, Any]
    title: str
    results: dict[str, Any] = field(default_factory=dict)
    ok: bool | None = None


class JobRunner(QObject):
    """Runs steps one after another. Signals (all on the main thread):

    - ``stepStarted(index, title)``, ``stepFinished(index, ok, results)``
    - ``progress(percent)`` of the current step, ``progressText(text)``, ``log(text, level)``
    - ``backendEvent(event)``: every backend JSON event (for the loss curve)
    - ``finished(ok, message)``: the whole job
    """

    stepStarted = pyqtSignal(int, str)  # noqa: N815
    stepFinished = pyqtSignal(int, bool, object)  # noqa: N815
    progress = pyqtSignal(float)
    progressText = pyqtSignal(str)  # noqa: N815
    log = pyqtSignal(str, str)
    backendEvent = pyqtSignal(object)  # noqa: N815
    finished = pyqtSignal(bool, str)

    def __init__(self, steps: list[Step], project: QgsProject | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.steps = steps
        self.errors: list[str] = []
        self.project = project or QgsProject.instance()
        self.index = -1
        self.running = False
        self.cancelled = False
        self.task: QgsProcessingAlgRunnerTask | None = None
        self.context: QgsProcessingContext | None = None
        self.feedback: EventFeedback | None = None
        self.alg = None
        self.loaded_layers: list[str] = []

    # -- control -----------------------------------------------------------------------------------------------
    def start(self) -> None:
        self.running, self.cancelled, self.index = True, False, -1
        self._next()

    def cancel(self) -> None:
        self.cancelled = True
        if self.feedback is not None:
            self.feedback.cancel()
        if self.task is not None:
            self.task.cancel()
        self.log.emit(tr("Cancel requested: the backend stops at its next safe point (a checkpoint is kept)."),
                      "warning")

    # -- steps -------------------------------------------------------------------------------------------------
    def _next(self) -> None:
        self.index += 1
        if self.cancelled:
            return self._finish(False, tr("Cancelled."))
        if self.index >= len(self.steps):
            return self._finish(True, tr("All steps finished."))
        step = self.steps[self.index]
        alg = QgsApplication.processingRegistry().algorithmById(step.alg_id)
        if alg is None:
            return self._finish(False, tr("The algorithm {alg} is not registered (is the eo-ssl provider on?).").format(
                alg=step.alg_id))
        context = QgsProcessingContext()
        context.setProject(self.project)
        feedback = EventFeedback()
        context.setFeedback(feedback)
        feedback.progressChanged.connect(self.progress.emit)
        feedback.backendEvent.connect(self._on_event)
        feedback.errorReported.connect(self._on_error)
        self.errors = []
        ok, message = alg.checkParameterValues(step.params, context)
        if not ok:
            return self._finish(False, f"{step.title}: {message}")
        self.alg, self.context, self.feedback = alg, context, feedback
        self.stepStarted.emit(self.index, step.title)
        self.log.emit(f"── {step.title} ──", "step")
        task = QgsProcessingAlgRunnerTask(alg, step.params, context, feedback)
        task.executed.connect(self._on_executed)
        self.task = task
        QgsApplication.taskManager().addTask(task)

    def _on_event(self, event: dict[str, Any]) -> None:
        """Backend events -> the dialog's log. An ``error`` event is not logged: the algorithm turns it into its
        error (in the plugin's words), which arrives once through :meth:`_on_error`."""
        self.backendEvent.emit(event)
        kind = event.get("event")
        if kind == "progress":
            self.progressText.emit(progress_text(event))
        elif kind == "log":
            self.log.emit(str(event.get("message", "")), str(event.get("level", "info")))
        elif kind == "warning":
            self.log.emit(f"[{event.get('code')}] {event.get('message')}", "warning")
        elif kind == "artifact":
            self.log.emit(tr("wrote {kind}: {path}").format(kind=event.get("kind"), path=event.get("path")), "info")
        elif kind == "start":
            self.log.emit(tr("backend: {command}").format(command=event.get("command")), "debug")

    def _on_error(self, text: str) -> None:
        if text and text not in self.errors:
            self.errors.append(text)

    def _on_executed(self, ok: bool, results: dict[str, Any]) -> None:
        step = self.steps[self.index]
        step.ok, step.results = ok, dict(results or {})
        feedback, context = self.feedback, self.context
        if ok and context is not None:
            self._load_outputs(context, feedback)
        elif not self.cancelled:
            for text in self.errors:  # the algorithm's error, once
                self.log.emit(text, "error")
        self.stepFinished.emit(self.index, ok, step.results)
        self.task = None
        if not ok:
            msg = tr("Cancelled: the backend stopped; finished outputs and checkpoints are kept.") if self.cancelled \
                else tr("{step} failed (see the log).").format(step=step.title)
            return self._finish(False, msg)
        self._next()

    def _load_outputs(self, context: QgsProcessingContext, feedback) -> None:
        """Processing's own result handling (main thread): loads the layers registered to load on completion and
        runs their post-processors (styles)."""
        if not context.layersToLoadOnCompletion():
            return
        before = set(self.project.mapLayers())
        try:
            from processing.gui.Postprocessing import handleAlgorithmResults

            handleAlgorithmResults(self.alg, context, feedback, showResults=False)
        except ImportError:  # the Processing plugin is off: load them plainly
            for path, details in context.layersToLoadOnCompletion().items():
                from qgis.core import QgsProcessingUtils

                layer = QgsProcessingUtils.mapLayerFromString(path, context, typeHint=details.layerTypeHint)
                if layer is not None:
                    layer = context.temporaryLayerStore().takeMapLayer(layer)
                    layer.setName(details.name or layer.name())
                    self.project.addMapLayer(layer)
                    if details.postProcessor():
                        details.postProcessor().postProcessLayer(layer, context, feedback)
        added = [lid for lid in self.project.mapLayers() if lid not in before]
        self.loaded_layers += added
        for lid in added:
            self.log.emit(tr("added to the project: {layer}").format(layer=self.project.mapLayer(lid).name()), "info")

    def _finish(self, ok: bool, message: str) -> None:
        self.running = False
        self.task = None
        self.finished.emit(ok, message)
