"""``eo-ssl <command>``: the command line of the backend (also ``python -m backend``).

The commands are the table of :mod:`backend.commands` (name -> module, help). Each module defines
``add_arguments(parser)`` and ``run(args, events) -> dict`` (the summary for the ``done`` event). Modules are imported
lazily, so ``eo-ssl prepare --help`` does not pay for importing torch.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from backend import __version__, disk, options, output_paths, outputs
from backend.commands import COMMANDS
from backend.errors import EoSslError
from backend.events import Cancelled, Events, ddp_child_stdout_to_stderr


class UsageError(Exception):
    """A command line argparse cannot parse (raised instead of exiting when events are wanted)."""


class _Parser(argparse.ArgumentParser):
    """argparse, except that with ``raise_errors`` a bad command line raises :class:`UsageError` (the CLI turns it
    into an ``error`` event) instead of printing usage and exiting."""

    raise_errors = False

    def error(self, message: str) -> None:  # type: ignore[override]
        if _Parser.raise_errors:
            raise UsageError(f"{self.prog}: {message}")
        super().error(message)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command; only ``command``'s options are added (all when None). A command declared in
    :mod:`backend.options` is built from there without importing its module (so ``--help`` and bad arguments cost
    no torch import); any other command's module provides ``add_arguments``."""
    parser = _Parser(prog="eo-ssl", description="Self-supervised learning on Sentinel-1/2.")
    parser.add_argument("--version", action="version", version=f"eo-ssl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--events", action="store_true",
                       help="print JSON-lines events on stdout (for the QGIS plugin) instead of a progress bar")
        if command is None or command == name:
            if name in options.COMMANDS:
                options.add_arguments(p, name)
            else:
                importlib.import_module(module).add_arguments(p)
    return parser


def check_arguments(command: str, args: argparse.Namespace) -> None:
    """What can be checked from the command line alone, before the command's module is imported: every value in
    its declared range, no output that is, holds or lies inside an input, and none over a path eo-ssl did not
    write."""
    options.validate(command, args)
    outs = options.paths(command, args, "output")
    output_paths.refuse_output_in_inputs(outs, options.paths(command, args, "input"))
    outputs.refuse_foreign(outs)


def main(argv: Sequence[str] | None = None) -> int:
    is_process = argv is None  # the console script or ``python -m backend``: see exit_on_late_signal
    argv = list(sys.argv[1:] if argv is None else argv)
    ddp_child_stdout_to_stderr()  # before any event: a DDP child's stdout is not the JSON-lines channel
    command = next((a for a in argv if a in COMMANDS), None)
    parser = build_parser(command)
    json_mode = "--events" in argv
    _Parser.raise_errors = json_mode
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:  # only with --events: the plugin reads the reason as an error event
        events = Events(json_mode=True)
        events.start(command or "")
        events.error("bad_argument", str(exc), f"See eo-ssl {command or ''} --help.".replace("  ", " "))
        events.done(ok=False)
        return 2
    finally:
        _Parser.raise_errors = False
    if not args.command:
        parser.print_help()
        return 0
    events = Events(json_mode=args.events)
    with events.json_stdout(), events.signal_handlers(restore=not is_process):
        rc = _run(args, events)
    if is_process:
        exit_on_late_signal(rc)
    return rc


def _run(args: argparse.Namespace, events: Events) -> int:
    """The command, from its ``start`` event to its ``done`` event; the exit code."""
    arg_dict = {k: v for k, v in vars(args).items() if k not in ("events", "command")}
    events.start(args.command, **arg_dict)
    outputs.run_started()
    try:
        check_arguments(args.command, args)
        module = importlib.import_module(COMMANDS[args.command][0])
        events.check_cancel()  # a signal while the command's libraries loaded: stop before any work
        summary = module.run(args, events) or {}
        if events.cancelled:  # the signal came after the command's last safe point
            raise Cancelled(_late(events), hint="Nothing to redo: the outputs were complete before it came.")
    except BaseException as exc:  # noqa: BLE001 - every way a run ends early is reported here, once
        return _ended_early(events, args, exc)
    outputs.run_succeeded()
    events.done(ok=True, summary=summary)
    if not args.events and summary:
        for key, value in summary.items():
            print(f"{key}: {value}")
    return 0


def exit_on_late_signal(rc: int) -> None:
    """After the run's last event, in a process that is the CLI: SIGINT/SIGTERM end the process at once with the
    exit code the run already reported. The default action would turn a finished job into one killed by the signal
    (exit -15) while the interpreter shuts down; ignoring the signal would leave a shutdown that hangs (a DataLoader
    worker, a library's teardown) impossible to stop with Ctrl-C."""

    def handler(_signum: int, _frame: Any) -> None:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(rc)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)


def _failed(events: Events, rc: int, code: str, message: str, hint: str) -> int:
    """Report a failed run (after removing what it must not leave behind) and return its exit code."""
    outputs.run_failed()
    events.error(code, message, hint)
    events.done(ok=False)
    return rc


def _ended_early(events: Events, args: argparse.Namespace, exc: BaseException) -> int:
    """The one error event and the exit code of a run that did not finish.

    A signal decides first: once SIGINT/SIGTERM has come, the run ends ``cancelled`` with ``128 + signal`` whatever
    raised (the stop itself, a library's own exit such as Lightning's ``SystemExit`` on a second Ctrl-C, a DataLoader
    worker killed by the same signal), so a scheduler or a script never reads a stopped job as finished."""
    if events.cancelled or isinstance(exc, (Cancelled, KeyboardInterrupt)):
        hint = "Run the same command with --resume to continue, if it has one."
        if isinstance(exc, Cancelled):
            detail, hint = str(exc), exc.hint or hint
        elif isinstance(exc, (KeyboardInterrupt, SystemExit)):
            detail = "interrupted"
        else:  # an error the stop caused: said, but it is not what ended the run
            traceback.print_exception(exc, file=sys.stderr)
            detail = f"interrupted ({type(exc).__name__}: {exc})"
        by = f"stopped by {signal.Signals(events.signum).name}" if events.signum else "cancelled"
        return _failed(events, events.exit_code, "cancelled", f"{by}: {detail}", hint)
    if isinstance(exc, EoSslError):
        return _failed(events, 2, exc.code, exc.message, exc.hint)
    full = disk.disk_full_of(exc, getattr(args, "out", None) or getattr(args, "out_dir", None))
    if full is not None:  # one a command did not translate itself (torch's "file write failed" on a checkpoint)
        return _failed(events, 2, full.code, full.message, full.hint)
    traceback.print_exception(exc, file=sys.stderr)
    return _failed(events, 1, "internal", f"{type(exc).__name__}: {exc}",
                   "This is a bug in eo-ssl; the traceback is on stderr. Please report it.")


def _late(events: Events) -> str:
    """The message of a signal that came after the command's last safe point: its outputs are complete."""
    done = [a["path"] for a in events.artifacts]
    listed = ", ".join(done[:3]) + (" ..." if len(done) > 3 else "")
    return ("it came after the command had finished its work: the outputs are complete and kept"
            + (f" ({listed})" if listed else ""))
