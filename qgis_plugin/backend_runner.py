"""Run a backend command in its own process and follow its JSON-lines events.

Pure Python: no ``qgis``, no ``torch``. The Processing algorithms, the dialog and the tests all use this one class.

The protocol (docs/DESIGN.md, "Processes"): ``python -m backend <command> <args...> --events`` writes one JSON
object per line on stdout (``start``, ``progress``, ``log``, ``warning``, ``artifact``, ``error``, ``done``);
anything else goes to stderr. Cancel = SIGTERM (the backend stops at its next safe point and leaves a resumable
checkpoint); if it has not exited after a grace period it is killed with its whole process group.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .names import NO_BACKEND_HINT
from .paths import ROOT

PROTOCOL_VERSION = 1
TERMINAL_EVENTS = ("done", "error")

#: Variables a QGIS installation may set for its own Python/GDAL/PROJ that break another interpreter or the
#: GDAL/PROJ bundled in the backend's wheels. The child gets none of them; PYTHONPATH is set to the checkout.
SCRUBBED_ENV = ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP", "PROJ_LIB", "PROJ_DATA", "GDAL_DATA", "GDAL_DRIVER_PATH")

EventCallback = Callable[[dict[str, Any]], None]


def backend_env(root: Path | str = ROOT, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a backend process: ``base`` (default ``os.environ``) minus QGIS's Python/GDAL/PROJ
    variables, with ``PYTHONPATH`` = the checkout so that ``backend`` is importable."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if k not in SCRUBBED_ENV}
    env["PYTHONPATH"] = str(root)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def options_to_args(options: Mapping[str, Any]) -> list[str]:
    """``{"s2": ["a.tif", "b.tif"], "out": p, "epochs": 3, "resume": True, "seed": None}`` ->
    ``["--s2", "a.tif", "b.tif", "--out", "p", "--epochs", "3", "--resume"]``. ``None``/``False`` are left out;
    underscores in keys become hyphens."""
    args: list[str] = []
    for key, value in options.items():
        if value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        if value is True:
            args.append(flag)
        elif isinstance(value, (list, tuple)):
            if value:
                args.append(flag)
                args.extend(_arg(v) for v in value)
        else:
            args.extend([flag, _arg(value)])
    return args


def _arg(value: Any) -> str:
    return os.fspath(value) if isinstance(value, os.PathLike) else str(value)


def _event(event: str, **fields: Any) -> dict[str, Any]:
    return {"event": event, "v": PROTOCOL_VERSION, "time": round(time.time(), 3), **fields}


class BackendRunner:
    """Start ``python -m backend <command> ... --events``, call ``on_event`` for each event, return the last one.

    ``run`` blocks the calling thread (Processing algorithms already run in a worker thread; the dialog runs it in
    a ``QgsTask``). ``cancel`` may be called from any thread.
    """

    def __init__(
        self,
        python: str | os.PathLike[str],
        root: str | os.PathLike[str] = ROOT,
        env: Mapping[str, str] | None = None,
        grace_s: float = 5.0,
        stderr_lines: int = 400,
    ) -> None:
        self.python = os.fspath(python)
        self.root = Path(root)
        self.env = backend_env(self.root, env)
        self.grace_s = grace_s
        self.events: list[dict[str, Any]] = []
        self.stderr: collections.deque[str] = collections.deque(maxlen=stderr_lines)
        self.returncode: int | None = None
        self.cancelled = False
        self._proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()

    # -- building the command ----------------------------------------------------------------------------------
    def build_command(self, command: str, args: Sequence[Any] | Mapping[str, Any] = ()) -> list[str]:
        """The argument list (never a shell string): ``[python, -m, backend, command, *args, --events]``."""
        if not command or command.startswith("-") or any(c.isspace() for c in command):
            raise ValueError(f"not a backend command name: {command!r}")
        rest = options_to_args(args) if isinstance(args, Mapping) else [_arg(a) for a in args]
        return [self.python, "-m", "backend", command, *rest, "--events"]

    # -- running -----------------------------------------------------------------------------------------------
    def run(
        self,
        command: str,
        args: Sequence[Any] | Mapping[str, Any] = (),
        on_event: EventCallback | None = None,
        on_stderr: Callable[[str], None] | None = None,
        timeout_s: float | None = None,
    ) -> dict[str, Any]:
        """Run one command to its end. Returns the final event: the ``error`` event if the backend reported one
        (its ``done`` follows it with ``ok: false``), else the ``done`` event. A process that ends without
        either (a crash, a kill) gives a made-up ``error`` event with code ``backend_crashed`` or ``cancelled``
        and the end of its stderr in ``detail``."""
        argv = self.build_command(command, args)
        self.events = []
        self.stderr.clear()
        self.returncode = None
        self.cancelled = False
        popen_kw: dict[str, Any] = {}
        if os.name == "posix":
            popen_kw["start_new_session"] = True  # its own process group: a hard kill takes its workers too
        elif sys.platform == "win32":
            popen_kw["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.CREATE_NO_WINDOW
        try:
            proc = subprocess.Popen(
                argv,
                cwd=self.root,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                encoding="utf-8",
                errors="replace",
                bufsize=1,
                **popen_kw,
            )
        except OSError as exc:
            final = _event(
                "error",
                code="backend_not_started",
                message=f"could not start the backend Python {self.python!r}: {exc}",
                hint=NO_BACKEND_HINT,
            )
            self._dispatch(final, on_event)
            return final
        with self._lock:
            self._proc = proc
        err_thread = threading.Thread(target=self._drain_stderr, args=(proc, on_stderr), daemon=True)
        err_thread.start()
        timer = None
        if timeout_s is not None:
            timer = threading.Timer(timeout_s, self.cancel)
            timer.daemon = True
            timer.start()

        error_event: dict[str, Any] | None = None
        done_event: dict[str, Any] | None = None
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                event = self._parse(line)
                if event is None:
                    continue
                if event.get("event") == "error":
                    error_event = event
                elif event.get("event") == "done":
                    done_event = event
                self._dispatch(event, on_event)
        except BaseException:
            self.cancel()
            raise
        finally:
            self.returncode = proc.wait()
            err_thread.join(timeout=5)
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
            if timer is not None:
                timer.cancel()
            with self._lock:
                self._proc = None

        if error_event is not None:
            final = dict(error_event)
        elif done_event is not None and (done_event.get("ok", True) or self.returncode == 0):
            final = dict(done_event)
        else:
            code = "cancelled" if self.cancelled else "backend_crashed"
            message = (
                "the backend was stopped before it finished"
                if self.cancelled
                else f"the backend ended without a result (exit code {self.returncode})"
            )
            final = _event(
                "error",
                code=code,
                message=message,
                hint="" if self.cancelled else "The end of its error output is in 'detail'; please report it.",
                detail="".join(list(self.stderr)[-40:]),
            )
            self._dispatch(final, on_event)
        final["returncode"] = self.returncode
        return final

    def cancel(self) -> None:
        """Ask the backend to stop (SIGTERM); kill its process group if it is still there after ``grace_s``.
        Returns at once; ``run`` returns when the process has ended."""
        with self._lock:
            proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        self.cancelled = True
        try:
            proc.terminate()
        except OSError:
            return
        killer = threading.Thread(target=self._kill_after_grace, args=(proc,), daemon=True)
        killer.start()

    @property
    def running(self) -> bool:
        with self._lock:
            return self._proc is not None and self._proc.poll() is None

    # -- internals ---------------------------------------------------------------------------------------------
    def _kill_after_grace(self, proc: subprocess.Popen[str]) -> None:
        try:
            proc.wait(timeout=self.grace_s)
            return
        except subprocess.TimeoutExpired:
            pass
        if os.name == "posix":
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                proc.kill()
        else:
            proc.kill()

    def _drain_stderr(self, proc: subprocess.Popen[str], on_stderr: Callable[[str], None] | None) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self.stderr.append(line)
            if on_stderr is not None:
                # a display callback must not stop the draining (the pipe would fill up and block the backend)
                with contextlib.suppress(Exception):
                    on_stderr(line.rstrip("\n"))

    @staticmethod
    def _parse(line: str) -> dict[str, Any] | None:
        text = line.strip()
        if not text:
            return None
        try:
            event = json.loads(text)
        except json.JSONDecodeError:
            event = None
        if not isinstance(event, dict) or "event" not in event:
            # The protocol keeps stdout for events; a stray line is shown, never lost.
            return _event("log", message=text, level="stdout")
        return event

    def _dispatch(self, event: dict[str, Any], on_event: EventCallback | None) -> None:
        self.events.append(event)
        if on_event is not None:
            on_event(event)
