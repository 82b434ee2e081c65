"""``eo-ssl <command>``: the command line of the backend (also ``python -m backend``).

Commands live in a registry: name -> module. Each module defines ``add_arguments(parser)`` and
``run(args, events) -> dict`` (the summary for the ``done`` event). Modules are imported lazily, so
``eo-ssl prepare --help`` does not pay for importing torch.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
import traceback
from collections.abc import Sequence

from backend import __version__
from backend.errors import EoSslError
from backend.events import Cancelled, Events

#: command name -> (module, one-line help). Add a command by adding a line here.
COMMANDS: dict[str, tuple[str, str]] = {
    "prepare": ("backend.data.prepare", "build a chip store from Sentinel-1/2 rasters (or chip folders)"),
}


def register(name: str, module: str, help_text: str) -> None:
    """Register a command module (used by the command modules' own packages and by tests)."""
    COMMANDS[name] = (module, help_text)


def _load_optional_commands() -> None:
    """Commands of later subsystems register themselves in ``backend.commands`` if present."""
    try:
        extra = importlib.import_module("backend.commands")
    except ModuleNotFoundError:
        return
    for name, (module, help_text) in getattr(extra, "COMMANDS", {}).items():
        try:
            present = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:  # its package is not there either
            present = False
        if present:
            COMMANDS.setdefault(name, (module, help_text))


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eo-ssl", description="Self-supervised learning on Sentinel-1/2.")
    parser.add_argument("--version", action="version", version=f"eo-ssl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--events", action="store_true",
                       help="print JSON-lines events on stdout (for the QGIS plugin) instead of a progress bar")
        if command is None or command == name:
            importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _load_optional_commands()
    command = next((a for a in argv if a in COMMANDS), None)
    parser = build_parser(command)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 0
    events = Events(json_mode=args.events)
    with events.json_stdout(), events.signal_handlers():
        arg_dict = {k: v for k, v in vars(args).items() if k not in ("events", "command")}
        events.start(args.command, **arg_dict)
        try:
            module = importlib.import_module(COMMANDS[args.command][0])
            summary = module.run(args, events) or {}
        except EoSslError as exc:
            events.error(exc.code, exc.message, exc.hint)
            events.done(ok=False)
            return 2
        except Cancelled as exc:
            events.error("cancelled", str(exc), "Run the same command with --resume to continue, if it has one.")
            events.done(ok=False)
            return 130
        except KeyboardInterrupt:
            events.error("cancelled", "interrupted", "")
            events.done(ok=False)
            return 130
        except Exception as exc:  # noqa: BLE001 - last line of defence: report, never a bare traceback only
            traceback.print_exc(file=sys.stderr)
            events.error("internal", f"{type(exc).__name__}: {exc}",
                         "This is a bug in eo-ssl; the traceback is on stderr. Please report it.")
            events.done(ok=False)
            return 1
        events.done(ok=True, summary=summary)
        if not args.events and summary:
            for key, value in summary.items():
                print(f"{key}: {value}")
    return 0
