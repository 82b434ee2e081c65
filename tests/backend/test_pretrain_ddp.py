"""Two-process DDP on the CPU (Lightning's ``ddp`` strategy, gloo): the run finishes, rank 0 alone reports on stdout
(one ``start``, one ``done``: the second process's stdout is sent to stderr) and writes one package."""

from __future__ import annotations

import json

import pytest

from backend.models.package import load_package
from tests.backend.pretrain_helpers import SMALL_HEADS, TINY, eurosat_store, start_pretrain


@pytest.mark.slow
def test_two_cpu_processes_write_one_package(tmp_path_factory, shared_data, tmp_path):
    eurosat = eurosat_store(tmp_path_factory, shared_data)
    out = tmp_path / "model"
    log = tmp_path / "ddp.jsonl"
    tiny = [a for a in TINY if a not in ("--devices", "cpu")]
    with open(log, "w") as f:
        proc = start_pretrain(["--data", eurosat, "--method", "barlow-twins", "--out", out, *tiny,
                               *SMALL_HEADS["barlow-twins"], "--max-steps", 3, "--devices", 2, "--strategy", "ddp"],
                              f)
        _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-3000:]
    events = [json.loads(line) for line in log.read_text().splitlines()]  # every stdout line is an event
    kinds = [e["event"] for e in events]
    assert kinds.count("start") == 1 and kinds.count("done") == 1 and kinds[-1] == "done"
    assert "in 2 processes" in " ".join(e["message"] for e in events if e["event"] == "log")
    progress = [e for e in events if e["event"] == "progress"]
    assert progress[-1]["step"] == progress[-1]["total"] == 3
    meta, weights = load_package(out)
    assert meta["training"]["world_size"] == 2 and meta["training"]["strategy"] == "ddp"
    assert meta["training"]["steps"] == 3 and weights
    assert sorted(p.name for p in out.iterdir()) == [".eo-ssl-output", "checkpoints", "model.json",
                                                     "training_curves.png", "weights.safetensors"]
    assert not list(tmp_path.glob("*.tmp-*"))


@pytest.mark.slow
def test_moco_queue_is_shared_by_the_ranks(tmp_path_factory, shared_data, tmp_path):
    """Each step enqueues the keys of both processes (gathered), so both ranks hold the same queue: after 3 steps of
    2 x 8 samples the queue pointer is at 48 (24 if each rank queued its own keys only)."""
    import torch

    eurosat = eurosat_store(tmp_path_factory, shared_data)
    out = tmp_path / "moco"
    tiny = [a for a in TINY if a not in ("--devices", "cpu")]
    with open(tmp_path / "ddp.jsonl", "w") as f:
        proc = start_pretrain(["--data", eurosat, "--method", "moco-v2", "--out", out, *tiny, *SMALL_HEADS["moco-v2"],
                               "--max-steps", 3, "--devices", 2, "--strategy", "ddp"], f)
        _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-3000:]
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert int(ckpt["moco_queue"]["ptr"]) == 2 * 8 * 3
