"""The pixel classifier's image-encoder embedding (:class:`backend.pixel.features.Embedding`) on one window: the
feature pyramid projected on its principal components **after** upsampling every level to full resolution (the
baseline, what it did until December 2026) against **before** (each level projected at its own resolution, then the
``dim`` channels upsampled: the same numbers, checked here too). ResNet-18 with the store's ten 10/20 m S2 bands, as
a ``stack`` encoder (byol, moco-v2, ...) and as RS-BYOL's ``per-band`` one (each band through the encoder alone).

    python benchmarks/pixel_embedding.py [--window 320] [--repeats 3] [--threads 2] [--out results/pixel_embedding.md]

The ratio column is baseline time / new time, both measured in this run (machines are noisy).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from common import REPO, cpu_name, memory

sys.path.insert(0, str(REPO))

from backend.pixel.features import Embedding, EmbeddingSpec  # noqa: E402

BANDS = ["B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"]


def _baseline(emb: Embedding, x: torch.Tensor) -> torch.Tensor:
    pyramid = emb.pyramid(x)
    return torch.einsum("bchw,kc->bkhw", pyramid - emb.pca_mean.view(1, -1, 1, 1), emb.pca_components)


def _time(fn, repeats: int) -> float:  # noqa: ANN001
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--window", type=int, default=320, help="window side in px (the pixel classifier's 256 + 2 x 32)")
    p.add_argument("--dim", type=int, default=32, help="principal components kept (the default of --embedding-dim)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "pixel_embedding.md"))
    a = p.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    rows = []
    for mode in ("stack", "per-band"):
        chans = len(BANDS) if mode == "stack" else 1
        spec = EmbeddingSpec("resnet18", chans, mode, [("s2", b) for b in BANDS], [0.0] * chans, [1.0] * chans,
                             [0, 1, 2, 3], dim=a.dim)
        emb = Embedding(spec).eval()
        emb.pca_mean.normal_()
        emb.pca_components.normal_()
        x = torch.randn(1, len(BANDS), a.window, a.window)
        with torch.no_grad():
            ref, new = _baseline(emb, x), emb(x)
            err = float((ref - new).abs().max() / ref.abs().max())
            t_base = _time(lambda: _baseline(emb, x), a.repeats)  # noqa: B023
            t_new = _time(lambda: emb(x), a.repeats)  # noqa: B023
        rows.append(f"| {mode} | {spec.pyramid_dim} -> {a.dim} | {t_base:.2f} | {t_new:.2f} | {t_base / t_new:.2f} "
                    f"| {err:.1e} |")
        print(rows[-1], flush=True)
    table = "\n".join([
        "# Pixel classifier embedding: projection before vs after upsampling\n",
        f"`python benchmarks/pixel_embedding.py --window {a.window} --dim {a.dim} --repeats {a.repeats} --threads "
        f"{a.threads}` on {cpu_name()} ({a.threads} threads{memory()}); ResNet-18, 10 S2 bands, one "
        f"{a.window} x {a.window} px window, median of {a.repeats}.\n",
        "| encoder input | channels | after upsampling (s) | before (s) | ratio | max relative difference |",
        "|---|---|---|---|---|---|", *rows, ""])
    Path(a.out).write_text(table)
    print(table)


if __name__ == "__main__":
    main()
