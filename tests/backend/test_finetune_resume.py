"""``eo-ssl finetune`` killed with SIGKILL resumes from its last checkpoint (EuroSAT-MS chips, classification): the
step counter goes on, the package says where it resumed, the checkpoints are removed once the package is written,
and a resume with other settings (another label fraction) is refused."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from backend.models.package import load_package
from tests.backend.model_helpers import FAST, eurosat_store, run_command
from tests.backend.pretrain_helpers import REPO, read_events, subprocess_env
from tests.backend.test_pretrain_resume import _ckpt_step, _wait

STEPS = 16


def _start(args: list[Any], stdout: Any) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "backend", "finetune", *map(str, args), "--events"],
                            stdout=stdout, stderr=subprocess.PIPE, text=True, cwd=REPO, env=subprocess_env())


@pytest.mark.slow
def test_killed_finetune_resumes_and_cleans_up(shared_data: Path, tmp_path_factory: pytest.TempPathFactory,
                                               tmp_path: Path) -> None:
    store = eurosat_store(shared_data, tmp_path_factory.getbasetemp())
    out = tmp_path / "tuned"
    ckpt = out / "checkpoints" / "last.ckpt"
    args = ["--data", store, "--task", "classification", "--encoder", "resnet18", "--crop", "32",
            "--label-fraction", "0.5", "--out", out, *FAST, "--max-steps", STEPS, "--checkpoint-every", 2]
    with open(tmp_path / "run1.jsonl", "w") as f:
        proc = _start(args, f)
        _wait(lambda: ckpt.exists() and _ckpt_step(ckpt) >= 4, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    killed_at = _ckpt_step(ckpt)
    assert 4 <= killed_at < STEPS and not (out / "model.json").exists()

    # other settings than the run being resumed: refused, nothing touched
    rc, events = run_command("finetune", [a if a != "0.5" else "0.25" for a in args] + ["--resume"])
    assert rc == 2 and [e["code"] for e in events if e["event"] == "error"] == ["resume_mismatch"]
    assert _ckpt_step(ckpt) == killed_at

    log = tmp_path / "run2.jsonl"
    with open(log, "w") as f:
        proc = _start([*args, "--resume"], f)
        rc = proc.wait(300)
    events = read_events(log)
    assert rc == 0, proc.stderr.read()[-3000:]
    assert f"resuming from {ckpt} at step {killed_at}" in " ".join(e["message"] for e in events if e["event"] == "log")
    steps = [e["step"] for e in events if e["event"] == "progress"]
    assert steps[0] > killed_at and steps[-1] == STEPS
    assert events[-1]["event"] == "done" and events[-1]["summary"]["steps"] == STEPS
    meta, state = load_package(out)
    assert meta["task"] == "classification" and meta["training"]["steps"] == STEPS and state
    assert meta["training"]["resumed_from_step"] == killed_at
    assert not (out / "checkpoints").exists()  # resumable state is for unfinished runs only
