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
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints", "model.json", "training_curves.png",
                                                     "weights.safetensors"]
    assert not list(tmp_path.glob("*.tmp-*"))
