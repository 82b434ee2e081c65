"""Lightning's chatter stays out of what people read: the CLI's stderr (and through it QGIS's Processing log) has no
"Tip: ... litlogger", no GPU/TPU summary, no "`Trainer.fit` stopped" and no deprecation warnings raised inside
Lightning (backend/train/runner.py quiets them at the source)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.backend.pretrain_helpers import REPO, SMALL_HEADS, TINY, subprocess_env

NOISE = ("litlogger", "Tip:", "is deprecated", "GPU available", "TPU available", "`Trainer.fit` stopped",
         "FutureWarning", "DeprecationWarning")


def test_a_training_run_prints_no_lightning_chatter(pretrain_eurosat: Path, tmp_path: Path) -> None:
    out = tmp_path / "model"
    proc = subprocess.run([sys.executable, "-m", "backend", "pretrain", "--data", str(pretrain_eurosat),
                           "--method", "byol", *SMALL_HEADS["byol"], *TINY, "--max-steps", "1", "--out", str(out)],
                          capture_output=True, text=True, cwd=REPO, env=subprocess_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "model.json").is_file() and "final_loss" in proc.stdout
    noise = [line for line in proc.stderr.splitlines() if any(n in line for n in NOISE)]
    assert not noise, noise
