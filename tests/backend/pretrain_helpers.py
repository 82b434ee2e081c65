"""Helpers of the pre-training tests (test_ssl_*.py, test_pretrain_*.py).

Real data only: the EuroSAT-MS train chips and one BigEarthNet-MM S1/S2 pair of ``../shared/data``, prepared once
per test session into pytest's base temporary folder (``prepare`` is run in-process). Tiny settings keep a
pre-training run to seconds on a 2-core CPU: ResNet-18, 32 px views, batches of 8, small heads.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
BEN_PATCH = "87_48"

#: method options that make every method small and fast enough for tests (the heads' widths)
SMALL_HEADS: dict[str, list[str]] = {
    "rs-byol": [],
    "byol": ["--set", "proj_hidden=256", "--set", "proj_dim=64"],
    "moco-v2": ["--set", "proj_hidden=256", "--set", "queue_size=512"],
    "simsiam": ["--set", "proj_dim=256", "--set", "pred_hidden=64"],
    "barlow-twins": ["--set", "proj_hidden=256", "--set", "proj_dim=256"],
    "swav": ["--set", "proj_hidden=256", "--set", "frozen_steps=2"],
}
TINY = ["--encoder", "resnet18", "--crop", "32", "--batch-size", "8", "--num-workers", "0", "--devices", "cpu"]


def one_torch_thread():  # noqa: ANN201 - a generator for module-scoped autouse fixtures
    """One torch thread while a test module runs, then back to what it was.

    On a CPU shared with other work (this project's 2-core test machines), two OpenMP threads per process made the
    training steps several times slower than one; other test modules keep their own setting."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _prepare(args: list[str]) -> None:
    from backend.cli import main

    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            rc = main(["prepare", *map(str, args), "--events"])
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    assert rc == 0, buf.getvalue()[-2000:]


def eurosat_store(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """The 216 EuroSAT-MS chips as a ``chips`` store (built once per session)."""
    out = tmp_path_factory.getbasetemp() / "pretrain_eurosat_store"
    if not (out / "manifest.json").exists():
        _prepare(["--chips", shared_data / "eurosat_ms_train", "--out", out])
    return out


def ben_store(tmp_path_factory: pytest.TempPathFactory, shared_data: Path, patch: str = BEN_PATCH) -> Path:
    """One BigEarthNet-MM pair (S2 L2A 12 bands + S1 VV/VH, 120 x 120 px) as a ``cube`` store."""
    out = tmp_path_factory.getbasetemp() / f"pretrain_ben_{patch}"
    if not (out / "manifest.json").exists():
        ben = shared_data / "bigearthnet_mm"
        s2 = next((ben / "BigEarthNet-S2-Example").glob(f"*_{patch}"))
        s1 = next((ben / "BigEarthNet-S1-Example").glob(f"*_{patch}"))
        _prepare(["--s2", s2, "--s1", s1, "--out", out])
    return out


def run_cli(command: str, args: list[Any]) -> tuple[int, list[dict[str, Any]]]:
    """``eo-ssl COMMAND ARGS --events`` in this process: (exit code, events). Restores the signal handlers."""
    from backend.cli import main

    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            rc = main([command, *map(str, args), "--events"])
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    return rc, [json.loads(line) for line in buf.getvalue().splitlines()]


def pretrain_ok(args: list[Any]) -> list[dict[str, Any]]:
    rc, events = run_cli("pretrain", args)
    errors = [e for e in events if e["event"] == "error"]
    assert rc == 0 and not errors, f"pretrain failed ({rc}): {errors}"
    return events


def subprocess_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME",)}
    env["PYTHONPATH"] = str(REPO)
    env.setdefault("OMP_NUM_THREADS", "1")  # the tests' CPU is shared; keep each process to one thread
    return env


def start_command(command: str, args: list[Any], stdout: Any) -> subprocess.Popen:
    """``python -m backend COMMAND ARGS --events`` as a child process writing its events to ``stdout``."""
    return subprocess.Popen([sys.executable, "-m", "backend", command, *map(str, args), "--events"],
                            stdout=stdout, stderr=subprocess.PIPE, text=True, cwd=REPO, env=subprocess_env())


def start_pretrain(args: list[Any], stdout: Any) -> subprocess.Popen:
    return start_command("pretrain", args, stdout)


def wait_for(predicate: Any, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    """Poll ``predicate`` until it holds; fail if ``proc`` ends first or ``timeout`` passes."""
    t0 = time.monotonic()
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended early ({proc.returncode}): {proc.stderr.read()[-3000:]}")
        if time.monotonic() - t0 > timeout:
            proc.kill()
            raise AssertionError("timed out")
        time.sleep(0.1)


def checkpoint_step(path: Path) -> int:
    """``global_step`` of a checkpoint, -1 while it cannot be read."""
    import torch

    try:
        return int(torch.load(path, map_location="cpu", weights_only=True)["global_step"])
    except Exception:  # noqa: BLE001 - being replaced right now (os.replace is atomic, but the read may race)
        return -1


def kill_at_checkpoint(command: str, args: list[Any], ckpt: Path, log: Path, min_step: int = 4) -> int:
    """Run ``command``, SIGKILL it once ``ckpt`` holds step ``min_step`` or later (nothing gets to clean up); the
    step the checkpoint holds."""
    with open(log, "w") as f:
        proc = start_command(command, args, f)
        wait_for(lambda: ckpt.exists() and checkpoint_step(ckpt) >= min_step, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    return checkpoint_step(ckpt)


def resume_to_end(command: str, args: list[Any], ckpt: Path, killed_at: int, steps: int, log: Path
                  ) -> list[dict[str, Any]]:
    """``command ARGS --resume`` after :func:`kill_at_checkpoint`: it says where it resumes, its step counter goes on
    from there to ``steps``; its events."""
    with open(log, "w") as f:
        proc = start_command(command, [*args, "--resume"], f)
        rc = proc.wait(300)
    events = read_events(log)
    assert rc == 0, proc.stderr.read()[-3000:]
    assert f"resuming from {ckpt} at step {killed_at}" in " ".join(e["message"] for e in events if e["event"] == "log")
    progress = [e["step"] for e in events if e["event"] == "progress"]
    assert progress[0] > killed_at and progress[-1] == steps
    return events


def read_events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
