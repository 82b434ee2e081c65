"""What every eo-ssl Processing algorithm shares: resolving its parameters into backend options (on the main
thread, in ``prepareAlgorithm``), running ``python -m backend <command> ... --events`` through
:class:`~qgis_plugin.backend_runner.BackendRunner` (in ``processAlgorithm``), forwarding events to ``feedback``,
honouring Cancel, and turning a backend ``error`` into a :class:`QgsProcessingException` in the plugin's words
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

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)
from qgis.PyQt.QtCore import QCoreApplication, QEventLoop, QThread, pyqtSignal
from qgis.PyQt.QtGui import QIcon

from .. import backend_spec, settings
from ..backend_runner import BackendRunner, options_to_args
from ..backend_spec import AUTO
from ..i18n import tr
from ..messages import error_text
from ..names import NO_BACKEND_HINT, QT_TRANSLATE_NOOP
from ..paths import ICON, ROOT

#: Seconds between SIGTERM and a hard kill on Cancel: the backend stops at its next safe point (and writes its
#: checkpoint) well before; the kill keeps the promise "stopped within 5 s" for a step that takes longer.
CANCEL_GRACE_S = 4.0
EXTRA_ARGS = "EXTRA_ARGS"

HELP_FOOTER = QT_TRANSLATE_NOOP(
    "@default",
    "<p><i>eo-ssl runs this step in its own Python process (the backend; see Raster &gt; eo-ssl &gt; Backend "
    "diagnostics), so QGIS never loads PyTorch. The exact command line is shown at the top of the log: the same "
    "command works in a terminal (<code>python -m backend ...</code>).</i></p>")


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


#: The training options every training algorithm leaves to the command line, and why.
TRAINER_CLI_ONLY = {
    "--num-nodes": "multi-machine DDP is started from a terminal (torchrun on each machine), not from QGIS",
    "--strategy": "a DDP strategy matters with several devices only, where 'auto' (ddp) is right",
    "--num-workers": "chosen from the device (Further backend options overrides it)",
    "--threads": "tuning for machines shared with other work (Further backend options)",
}


class BackendAlgorithm(QgsProcessingAlgorithm):
    """Base class: subclasses define the parameters, :meth:`backend_options` (main thread) and
    :meth:`results` (after the backend succeeded).

    The contract with the backend (``tests/plugin/test_option_contract.py``): :attr:`OPTIONS` maps each parameter to
    the backend options it sets (the first one is the option whose default, range and choices the parameter
    mirrors, taken from :mod:`..backend_spec`); :attr:`CLI_ONLY` lists the command's options the algorithm does not
    offer, each with why; :attr:`OWN_DEFAULTS` the parameters whose default differs from the backend's on purpose
    and :attr:`LEFT_OUT` the backend choices an enum leaves out, each with why."""

    COMMAND = ""
    NAME = ""
    DISPLAY = ""
    GROUP = "eo-ssl"
    GROUP_ID = "eo_ssl"
    HELP = ""
    OPTIONS: dict[str, tuple[str, ...]] = {}
    CLI_ONLY: dict[str, str] = {}
    OWN_DEFAULTS: dict[str, str] = {}
    LEFT_OUT: dict[str, dict[str, str]] = {}

    def __init__(self) -> None:
        super().__init__()
        self._options: dict[str, Any] = {}
        self._python: str | None = None
        self._final: dict[str, Any] = {}
        self._events: list[dict[str, Any]] = []
        self._extra: list[str] = []
        self._prepare_error: QgsProcessingException | None = None
        self._to_load: list[tuple[str, QgsProcessingContext.LayerDetails]] = []

    # -- identity ----------------------------------------------------------------------------------------------
    def tr(self, text: str) -> str:
        return tr(text)

    def createInstance(self):  # noqa: N802 - QGIS API
        return type(self)()

    def name(self) -> str:
        return self.NAME

    def displayName(self) -> str:  # noqa: N802 - QGIS API
        return self.tr(self.DISPLAY)

    def group(self) -> str:
        return self.tr(self.GROUP)

    def groupId(self) -> str:  # noqa: N802 - QGIS API
        return self.GROUP_ID

    def shortHelpString(self) -> str:  # noqa: N802 - QGIS API
        return self.tr(self.HELP) + self.tr(HELP_FOOTER)

    def shortDescription(self) -> str:  # noqa: N802 - QGIS API
        return self.tr(self.HELP.split("</p>")[0].replace("<p>", ""))

    def icon(self) -> QIcon:
        return QIcon(str(ICON))

    def svgIconPath(self) -> str:  # noqa: N802 - QGIS API
        return str(ICON)

    # -- running -----------------------------------------------------------------------------------------------
    def prepareAlgorithm(self, parameters, context: QgsProcessingContext, feedback) -> bool:  # noqa: N802
        # A bad input found here is raised again by processAlgorithm: QGIS swallows exceptions of prepare into a
        # generic "errors executing the algorithm", while one from processAlgorithm reaches processing.run callers.
        self._prepare_error = None
        before = set(context.layersToLoadOnCompletion())
        try:
            self._python = backend_python_or_raise()
            self._options = self.backend_options(parameters, context, feedback)
            self._extra = self.extra_args(parameters, context)
        except QgsProcessingException as exc:
            self._prepare_error = exc
        # Outputs to load (destination parameters read above): remembered, because a run in a worker thread uses a
        # fresh context whose list of layers to load replaces the one prepared here (QgsProcessingContext::
        # takeResultsFrom); processAlgorithm registers them again in the context it is given.
        self._to_load = [(path, context.layerToLoadOnCompletionDetails(path))
                         for path in context.layersToLoadOnCompletion() if path not in before]
        self._to_load = [(path, QgsProcessingContext.LayerDetails(d.name, d.project, d.outputName, d.layerTypeHint))
                         for path, d in self._to_load]
        return True

    def processAlgorithm(self, parameters, context: QgsProcessingContext, feedback):  # noqa: N802 - QGIS API
        if self._prepare_error is not None:
            raise self._prepare_error
        for path, details in self._to_load:
            if not context.willLoadLayerOnCompletion(path):
                context.addLayerToLoadOnCompletion(path, details)
        assert self._python is not None
        args = options_to_args(self._options) + self._extra
        self._final, self._events = run_backend(self.COMMAND, args, self._python, feedback)
        return self.results(parameters, context, feedback)

    def add_extra_args_parameter(self) -> None:
        param = QgsProcessingParameterString(
            EXTRA_ARGS, "Further backend options (advanced: those no parameter here sets)", optional=True)
        param.setFlags(param.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        param.setHelp("Passed to the backend command as extra arguments (split like a shell would, but never run "
                      "by a shell). See `python -m backend <command> --help`. An option a parameter of this algorithm "
                      "sets is refused: set it in that parameter.")
        self.addParameter(param)

    def extra_args(self, parameters, context) -> list[str]:
        """The further backend options, split as a shell would. An option that a parameter of this algorithm sets
        (``--batch-size`` beside *Batch size*) is refused, naming that parameter: typed after the parameters, it
        would silently win over what the field shows."""
        if parameters.get(EXTRA_ARGS) in (None, "") or self.parameterDefinition(EXTRA_ARGS) is None:
            return []
        text = self.parameterAsString(parameters, EXTRA_ARGS, context).strip()
        try:
            args = shlex.split(text)
        except ValueError as exc:
            raise QgsProcessingException(tr("Cannot read the further backend options {text}: {error}").format(
                text=repr(text), error=exc)) from exc
        repeated = self.repeated_options(args)
        if repeated:
            typed, option, names = repeated[0]
            parameters_ = tr(" or ").join(f"'{self.parameterDefinition(n).description()}'" for n in names)
            raise QgsProcessingException(tr(
                "The further backend options repeat {option}, which the parameter {parameter} sets: set it there "
                "and remove {typed} from the further backend options.").format(
                option=option, parameter=parameters_, typed=typed))
        return args

    def repeated_options(self, args: list[str]) -> list[tuple[str, str, list[str]]]:
        """(option as typed, its name, the parameters that set it) for each option of ``args`` a parameter sets. An
        option is recognised as the backend's parser reads it: its name, an alias, ``--name=value``, or an
        unambiguous prefix (argparse's abbreviations)."""
        owner: dict[str, list[str]] = {}
        for name, options in self.OPTIONS.items():
            for option in options:
                owner.setdefault(option, []).append(name)
        known: dict[str, str] = {}  # every spelling of the command's options -> the option's name
        for opt in backend_spec.spec()["commands"].get(self.COMMAND, []):
            for spelling in (opt["name"], *opt.get("aliases", [])):
                known[spelling] = opt["name"]
        repeated = []
        for arg in args:
            if not arg.startswith("--"):
                continue
            typed = arg.split("=", 1)[0]
            option = known.get(typed)
            if option is None:
                matches = {name for spelling, name in known.items() if spelling.startswith(typed)}
                option = matches.pop() if len(matches) == 1 else None
            if option in owner:
                repeated.append((typed, option, owner[option]))
        return repeated

    def checkParameterValues(self, parameters, context):  # noqa: N802 - QGIS API
        try:
            self.extra_args(parameters, context)
        except QgsProcessingException as exc:
            return False, str(exc)
        return super().checkParameterValues(parameters, context)

    def mapped_options(self, parameters, context, *names: str) -> dict[str, Any]:
        """The backend options of parameters that set one option each (:attr:`OPTIONS`), as given: nothing for an
        empty parameter or ``auto`` (the backend's default applies), a flag for a checkbox."""
        options: dict[str, Any] = {}
        for name in names:
            definition = self.parameterDefinition(name)
            if parameters.get(name, definition.defaultValue()) in (None, ""):
                continue
            dest = self.OPTIONS[name][0].lstrip("-").replace("-", "_")
            if isinstance(definition, QgsProcessingParameterNumber):
                integer = definition.dataType() == QgsProcessingParameterNumber.Integer
                value: Any = (self.parameterAsInt if integer else self.parameterAsDouble)(parameters, name, context)
            elif isinstance(definition, QgsProcessingParameterEnum):
                value = self.parameterAsEnumString(parameters, name, context)
                if value in ("", AUTO):
                    continue
            elif isinstance(definition, QgsProcessingParameterBoolean):
                value = self.parameterAsBool(parameters, name, context)
            else:
                value = self.parameterAsString(parameters, name, context).strip()
                if not value:
                    continue
            options[dest] = value
        return options

    # -- for subclasses ----------------------------------------------------------------------------------------
    def backend_options(self, parameters, context, feedback) -> dict[str, Any]:
        raise NotImplementedError

    def results(self, parameters, context, feedback) -> dict[str, Any]:
        raise NotImplementedError

    def summary(self) -> dict[str, Any]:
        return dict(self._final.get("summary") or {})
