"""What the benchmark scripts share: running a command as an analyst would (``cli``) and naming the machine a table
was measured on (``cpu_name``, ``memory``). The scripts run as ``python benchmarks/NAME.py``, so this folder is on
``sys.path`` and they ``from common import ...``."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def cli(command: str, args: list[Any], log: bool = True) -> tuple[dict[str, Any], float]:
    """``python -m backend COMMAND ARGS --events``: (the done event's summary, seconds); fails loudly. ``log``: echo
    the command's log and warning events to stderr."""
    t0 = time.monotonic()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "backend", command, *map(str, args), "--events"],
                          capture_output=True, text=True, cwd=REPO, env=env)
    events = [json.loads(ln) for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0:
        errors = [e for e in events if e["event"] == "error"]
        raise RuntimeError(f"{command} failed ({proc.returncode}): {errors}\n{proc.stderr[-2000:]}")
    if log:
        for e in events:
            if e["event"] in ("log", "warning"):
                print(f"  [{command}] {e.get('message')}", file=sys.stderr)
    return events[-1]["summary"], time.monotonic() - t0


def cpu_name(default: str | None = None) -> str:
    """The CPU's model name (/proc/cpuinfo), else ``default`` (else what ``platform`` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return default or platform.processor() or platform.machine()


def memory() -> str:
    """", N GiB RAM" (/proc/meminfo's MemTotal), or "" where that cannot be read."""
    try:
        meminfo = Path("/proc/meminfo").read_text().splitlines()
        kib = int(next(line for line in meminfo if line.startswith("MemTotal")).split()[1])
    except (OSError, StopIteration, ValueError):
        return ""
    return f", {kib / 2**20:.0f} GiB RAM"
