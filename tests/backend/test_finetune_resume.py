"""``eo-ssl finetune`` killed with SIGKILL resumes from its last checkpoint (EuroSAT-MS chips, classification): the
step counter goes on, the package says where it resumed, the checkpoints are removed once the package is written,
and a resume with other settings (another label fraction) is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.models.package import load_package
from tests.backend.model_helpers import FAST, eurosat_store, run_command
from tests.backend.pretrain_helpers import checkpoint_step, kill_at_checkpoint, resume_to_end

STEPS = 16


@pytest.mark.slow
def test_killed_finetune_resumes_and_cleans_up(shared_data: Path, tmp_path_factory: pytest.TempPathFactory,
                                               tmp_path: Path) -> None:
    store = eurosat_store(shared_data, tmp_path_factory.getbasetemp())
    out = tmp_path / "tuned"
    ckpt = out / "checkpoints" / "last.ckpt"
    args = ["--data", store, "--task", "classification", "--encoder", "resnet18", "--crop", "32",
            "--label-fraction", "0.5", "--out", out, *FAST, "--max-steps", STEPS, "--checkpoint-every", 2]
    killed_at = kill_at_checkpoint("finetune", args, ckpt, tmp_path / "run1.jsonl")
    assert 4 <= killed_at < STEPS and not (out / "model.json").exists()

    # other settings than the run being resumed: refused, nothing touched
    rc, events = run_command("finetune", [a if a != "0.5" else "0.25" for a in args] + ["--resume"])
    assert rc == 2 and [e["code"] for e in events if e["event"] == "error"] == ["resume_mismatch"]
    assert checkpoint_step(ckpt) == killed_at

    events = resume_to_end("finetune", args, ckpt, killed_at, STEPS, tmp_path / "run2.jsonl")
    assert events[-1]["event"] == "done" and events[-1]["summary"]["steps"] == STEPS
    meta, state = load_package(out)
    assert meta["task"] == "classification" and meta["training"]["steps"] == STEPS and state
    assert meta["training"]["resumed_from_step"] == killed_at
    assert not (out / "checkpoints").exists()  # resumable state is for unfinished runs only
