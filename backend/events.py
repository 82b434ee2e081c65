"""The JSON-lines event protocol (version 1) and its human-readable twin.

One object per line on stdout: ``start``, ``progress``, ``log``, ``warning``, ``artifact``, ``error``, ``done``.
The same calls drive the CLI progress bar (``human`` mode), the plugin's dialog and Processing feedback
(``json`` mode). In ``json`` mode nothing else may reach stdout, so :func:`Events.json_stdout` redirects
``sys.stdout`` to stderr while a command runs and keeps the real stream for events.

Cancellation: SIGINT/SIGTERM set :attr:`Events.cancelled` (and :attr:`Events.signum`); long loops call
:meth:`Events.check_cancel` at safe points (between steps) so work stops cleanly and leaves a resumable checkpoint.
The CLI is the one authority on how a signalled run ends: ``cancelled``, exit ``128 + signal`` (130 for SIGINT, 143
for SIGTERM), whatever the moment the signal came (see :func:`backend.cli.main`).

Tests only: :data:`TEST_SIGNAL_AT` (``KIND:N:SIGNAL``, e.g. ``progress:2:TERM``) makes the process send itself
SIGNAL right after it emits its N-th ``KIND`` event, so a cancel is tested at a fixed moment of a run rather than
after a sleep. Nothing else reads it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
import time
from collections.abc import Iterator
from typing import IO, Any

PROTOCOL_VERSION = 1
#: the test hook (see the module docstring): ``KIND:N:SIGNAL``, e.g. ``progress:2:TERM``, ``artifact:1:INT``
TEST_SIGNAL_AT = "EO_SSL_TEST_SIGNAL_AT"


def _signal_at() -> tuple[str, int, int] | None:
    """(event kind, N, signal number) of :data:`TEST_SIGNAL_AT`, for the main process only (DDP ranks > 0 re-run
    the command line with the same environment: one signal, to rank 0, as a user or a scheduler sends it)."""
    spec = os.environ.get(TEST_SIGNAL_AT, "")
    if not spec or any(os.environ.get(v, "0") not in ("", "0") for v in ("LOCAL_RANK", "RANK", "NODE_RANK")):
        return None
    kind, n, name = (spec.split(":") + ["", "", ""])[:3]
    return kind, int(n), int(getattr(signal, "SIG" + (name or "TERM").upper().removeprefix("SIG")))


def ddp_child_stdout_to_stderr() -> None:
    """In a DDP child started by Lightning (LOCAL_RANK > 0, re-running the command line), send fd 1 to stderr:
    stdout is rank 0's JSON-lines channel. Idempotent."""
    if os.environ.get("LOCAL_RANK", "0") not in ("", "0") and os.environ.get("EO_SSL_DDP_CHILD_STDOUT") != "keep":
        sys.stdout.flush()
        os.dup2(2, 1)


class Cancelled(Exception):
    """Raised at a safe point after the user asked the process to stop; ``hint`` overrides the CLI's."""

    def __init__(self, message: str = "cancelled by the user", hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


def _clean(value: Any) -> Any:
    """JSON-safe copy: NaN/inf become None, numpy scalars become Python numbers, paths become strings."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


class Events:
    """Emit progress and results either as JSON lines (``json=True``) or for a person at a terminal."""

    def __init__(self, json_mode: bool = False, stream: IO[str] | None = None, quiet: bool = False) -> None:
        self.json_mode = json_mode
        self.stream = stream if stream is not None else sys.stdout
        self.quiet = quiet
        self.cancelled = False
        #: the signal that asked for the stop (None: none, or a cancel from elsewhere, e.g. another DDP process)
        self.signum: int | None = None
        self.warnings: list[dict[str, Any]] = []
        self.artifacts: list[dict[str, Any]] = []
        self._bar: Any = None
        self._bar_total: int | None = None
        self._t0 = time.monotonic()
        self._signal_at = _signal_at()
        self._counts: dict[str, int] = {}

    # -- plumbing ---------------------------------------------------------------------------------------
    def emit(self, event: str, **fields: Any) -> None:
        if self.json_mode:
            record = {"event": event, "v": PROTOCOL_VERSION, "time": round(time.time(), 3), **_clean(fields)}
            self.stream.write(json.dumps(record) + "\n")
            self.stream.flush()
        if self._signal_at is not None:
            self._counts[event] = n = self._counts.get(event, 0) + 1
            kind, at, signum = self._signal_at
            if (event, n) == (kind, at):
                os.kill(os.getpid(), signum)

    @contextlib.contextmanager
    def json_stdout(self) -> Iterator[None]:
        """While active, ``print`` and library output go to stderr; events keep the real stdout."""
        if not self.json_mode:
            yield
            return
        real = sys.stdout
        self.stream = real
        sys.stdout = sys.stderr
        try:
            yield
        finally:
            sys.stdout = real

    @contextlib.contextmanager
    def signal_handlers(self, restore: bool = True) -> Iterator[None]:
        """While active, the first SIGINT/SIGTERM asks for a clean stop and a second one stops at once.

        Afterwards the previous handlers come back (``restore``: in-process callers such as the demo and tests keep
        theirs); when the run is the process (``restore=False``) they stay until the CLI replaces them with
        :func:`backend.cli.exit_on_late_signal`: the default action would turn a finished job into one killed by the
        signal (exit -15) while the interpreter shuts down."""
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        self.install_signal_handlers()
        try:
            yield
        finally:
            for sig, handler in previous.items() if restore else ():
                with contextlib.suppress(ValueError, TypeError):
                    signal.signal(sig, handler)

    def install_signal_handlers(self) -> None:
        """First SIGINT/SIGTERM asks for a clean stop; a second one stops at once."""

        def handler(signum: int, _frame: Any) -> None:
            if self.cancelled:
                raise KeyboardInterrupt
            self.cancelled = True
            self.signum = signum
            # the main thread may be inside a write to the same stream (a full pipe): never fail the handler for a
            # log line
            with contextlib.suppress(RuntimeError, OSError):
                self.log(f"signal {signum} received: stopping at the next safe point", level="warning")

        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not in the main thread (tests)
                signal.signal(sig, handler)

    def check_cancel(self) -> None:
        if self.cancelled:
            raise Cancelled("cancelled by the user")

    @property
    def exit_code(self) -> int:
        """The exit code of a cancelled run: 128 + the signal (the shell's convention: 130 SIGINT, 143 SIGTERM),
        130 for a cancel that came from elsewhere."""
        return 128 + (self.signum or signal.SIGINT)

    # -- the protocol -----------------------------------------------------------------------------------
    def start(self, command: str, **args: Any) -> None:
        self._t0 = time.monotonic()
        self.emit("start", command=command, args=args)

    def progress(self, step: int, total: int | None = None, **fields: Any) -> None:
        """``fields`` may hold ``epoch``, ``loss``, ``lr``, ``metrics``, ``eta_s``, ``stage``..."""
        if "eta_s" not in fields and total and step > 0:
            elapsed = time.monotonic() - self._t0
            fields["eta_s"] = round(elapsed / step * (total - step), 1)
        self.emit("progress", step=step, total=total, **fields)
        if not self.json_mode and not self.quiet:
            self._human_bar(step, total, fields)

    def log(self, message: str, level: str = "info") -> None:
        self.emit("log", message=message, level=level)
        if not self.json_mode and not self.quiet:
            self._write_human(f"{message}")

    def warning(self, code: str, message: str) -> None:
        self.warnings.append({"code": code, "message": message})
        self.emit("warning", code=code, message=message)
        if not self.json_mode:
            self._write_human(f"warning [{code}]: {message}")

    def artifact(self, kind: str, path: str, **fields: Any) -> None:
        self.artifacts.append({"kind": kind, "path": str(path), **fields})
        self.emit("artifact", kind=kind, path=str(path), **fields)

    def error(self, code: str, message: str, hint: str = "") -> None:
        self.emit("error", code=code, message=message, hint=hint)
        if not self.json_mode:
            self.close_bar()
            sys.stderr.write(f"error [{code}]: {message}\n")
            if hint:
                sys.stderr.write(f"hint: {hint}\n")
            sys.stderr.flush()

    def done(self, ok: bool = True, summary: dict[str, Any] | None = None) -> None:
        self.close_bar()
        self.emit("done", ok=ok, summary=summary or {}, elapsed_s=round(time.monotonic() - self._t0, 2))

    # -- human mode -------------------------------------------------------------------------------------
    def _write_human(self, line: str) -> None:
        if self._bar is not None:
            self._bar.write(line, file=sys.stderr)
        else:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()

    def _human_bar(self, step: int, total: int | None, fields: dict[str, Any]) -> None:
        from tqdm import tqdm

        if self._bar is None or total != self._bar_total:
            self.close_bar()
            self._bar = tqdm(total=total, file=sys.stderr, desc=str(fields.get("stage", "")), leave=False)
            self._bar_total = total
        self._bar.n = step
        post = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in fields.items()
                if k in ("epoch", "loss", "lr") and v is not None}
        if post:
            self._bar.set_postfix(post, refresh=False)
        self._bar.refresh()

    def close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
            self._bar_total = None
