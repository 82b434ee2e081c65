"""dense-moco under the runner's guarantees, on the real 21-date T37MEM series: a run killed with SIGKILL resumes
from its last checkpoint with its key queue, and two CPU processes (DDP, gloo) gather their keys into one queue and
write one package."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from backend.models.package import load_package
from tests.backend.pretrain_helpers import kill_at_checkpoint, resume_to_end, start_pretrain
from tests.backend.test_pretrain_dense import T37_BANDS

STEPS = 12
#: a small U-Net-3D and queue, batches of 2 crops of 32 px: seconds per step on one CPU thread
SMALL = ["--method", "dense-moco", "--crop", "32", "--batch-size", "2", "--num-workers", "0",
         "--set", "base_width=8", "--set", "depth=2", "--set", "queue_size=64", "--set", "keys_per_sample=2"]


@pytest.fixture(scope="module")
def series(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.backend.pretrain_helpers import _prepare

    out = tmp_path_factory.mktemp("dense_resume") / "t37mem.store"
    _prepare(["--s2", shared_data / "s2_timeseries_t37mem", "--s2-bands", T37_BANDS, "--poi", "2017-01-01/2018-12-31",
              "--resolution", "20", "--out", out])
    return out


def _queue(ckpt: Path) -> tuple[int, int]:
    """(keys filled, write position) of the key queue saved in a checkpoint."""
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    return int(state["criterion.queue_filled"]), int(state["criterion.queue_ptr"])


@pytest.mark.slow
def test_killed_run_resumes_with_its_queue(series: Path, tmp_path: Path) -> None:
    out = tmp_path / "dense"
    ckpt = out / "checkpoints" / "last.ckpt"
    args = ["--data", series, "--out", out, *SMALL, "--devices", "cpu", "--max-steps", STEPS,
            "--checkpoint-every", 2]
    killed_at = kill_at_checkpoint("pretrain", args, ckpt, tmp_path / "run1.jsonl")
    assert 4 <= killed_at < STEPS and not (out / "model.json").exists()
    # the checkpoint holds the queue as it was after step `killed_at`: 2 samples x 2 keys per step
    assert _queue(ckpt) == (min(64, 4 * killed_at), (4 * killed_at) % 64)

    resume_to_end("pretrain", args, ckpt, killed_at, STEPS, tmp_path / "run2.jsonl")
    # the queue went on from where it was: as if the run had never stopped
    assert _queue(ckpt) == (min(64, 4 * STEPS), (4 * STEPS) % 64)
    meta, state = load_package(out)
    assert meta["method"] == "dense-moco" and meta["training"]["steps"] == STEPS
    assert meta["training"]["resumed_from_step"] == killed_at
    assert state and all(k.startswith("temporal.") for k in state)


@pytest.mark.slow
def test_two_cpu_processes_share_one_queue(series: Path, tmp_path: Path) -> None:
    out = tmp_path / "dense_ddp"
    log = tmp_path / "ddp.jsonl"
    steps = 3
    with open(log, "w") as f:
        proc = start_pretrain(["--data", series, "--out", out, *SMALL, "--max-steps", steps, "--devices", 2,
                               "--strategy", "ddp"], f)
        _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-3000:]
    events = [json.loads(line) for line in log.read_text().splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds.count("start") == 1 and kinds.count("done") == 1 and kinds[-1] == "done"
    meta, state = load_package(out)
    assert meta["training"]["world_size"] == 2 and meta["training"]["steps"] == steps and state
    # each step enqueues the keys of both ranks (all_gather): 2 ranks x 2 samples x 2 keys
    assert _queue(out / "checkpoints" / "last.ckpt") == (min(64, 8 * steps), (8 * steps) % 64)
