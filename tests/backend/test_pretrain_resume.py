"""A pre-training killed with SIGKILL resumes from its last checkpoint: the step counter continues and the run
finishes; a cancelled one (SIGTERM, what the plugin sends) stops at the next step with a checkpoint and exit 143
(128 + SIGTERM)."""

from __future__ import annotations

import os
import signal

import pytest

from backend.models.package import load_package
from tests.backend.pretrain_helpers import (
    SMALL_HEADS,
    TINY,
    checkpoint_step,
    eurosat_store,
    kill_at_checkpoint,
    read_events,
    start_pretrain,
    wait_for,
)

STEPS = 16


@pytest.mark.slow
def test_kill_then_resume_then_cancel_then_finish(tmp_path_factory, shared_data, tmp_path):
    eurosat = eurosat_store(tmp_path_factory, shared_data)
    out = tmp_path / "model"
    ckpt = out / "checkpoints" / "last.ckpt"
    args = ["--data", eurosat, "--method", "byol", "--out", out, *TINY, *SMALL_HEADS["byol"],
            "--max-steps", STEPS, "--checkpoint-every", 2]

    # 1. run, SIGKILL once a checkpoint past step 2 exists: nothing gets to clean up
    log1 = tmp_path / "run1.jsonl"
    killed_at = kill_at_checkpoint("pretrain", args, ckpt, log1)
    assert 4 <= killed_at < STEPS
    assert not (out / "model.json").exists()
    assert [e for e in read_events(log1) if e["event"] == "done"] == []

    # 2. resume; once it is a few steps further, SIGTERM = the plugin's cancel
    log2 = tmp_path / "run2.jsonl"
    with open(log2, "w") as f:
        proc = start_pretrain([*args, "--resume"], f)
        wait_for(lambda: checkpoint_step(ckpt) >= killed_at + 4, proc)
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(60)
    events = read_events(log2)
    assert rc == 143, proc.stderr.read()[-2000:]
    error = next(e for e in events if e["event"] == "error")
    assert error["code"] == "cancelled" and "--resume" in error["hint"]
    logs = " ".join(e["message"] for e in events if e["event"] == "log")
    assert f"resuming from {ckpt} at step {killed_at}" in logs
    steps2 = [e["step"] for e in events if e["event"] == "progress"]
    assert steps2 and steps2[0] > killed_at  # the counter continues, it does not restart at 1
    cancelled_at = checkpoint_step(ckpt)
    assert cancelled_at >= killed_at + 4 and cancelled_at == steps2[-1]  # saved at the step it stopped
    assert not (out / "model.json").exists()

    # 3. resume to the end
    log3 = tmp_path / "run3.jsonl"
    with open(log3, "w") as f:
        proc = start_pretrain([*args, "--resume"], f)
        rc = proc.wait(300)
    events = read_events(log3)
    assert rc == 0, proc.stderr.read()[-3000:]
    steps3 = [e["step"] for e in events if e["event"] == "progress"]
    assert steps3[0] > cancelled_at and steps3[-1] == STEPS
    done = events[-1]
    assert done["event"] == "done" and done["ok"] and done["summary"]["steps"] == STEPS
    meta, weights = load_package(out)
    assert meta["training"]["steps"] == STEPS and meta["training"]["resumed_from_step"] == cancelled_at
    assert all(k.startswith("encoder.") for k in weights)
    assert checkpoint_step(ckpt) == STEPS
    assert os.path.getsize(out / "training_curves.png") > 1000
