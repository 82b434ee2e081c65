"""Pre-training throughput: images/s of the full training step, fed by the real DataLoader vs by a batch already on
the device.

For each method, the same Lightning ``Trainer`` as ``eo-ssl pretrain`` (``backend.train.runner.build_trainer``: same
precision, channels_last and pinned memory on CUDA) runs ``--warmup`` + ``--steps`` optimiser steps of the whole
step (batch augmentations on the device, forward, loss, backward, optimiser, momentum/queue updates):

- **loader**: batches from ``runner.make_loader`` over the chip store (``backend.ssl.data``: EuroSAT-MS chips for
  the stacked methods, random crops of the BigEarthNet-MM S1/S2 pair stores + Sen1Floods11 for rs-byol single);
- **device batch**: one batch of the same data, moved to the device once and fed again and again (the model-only
  bound).

``ratio = loader / device batch``: 1.0 means the data pipeline keeps up. images/s counts samples (each makes two
views). Timing starts after the warm-up steps (worker start-up, first kernels) and ends after a device
synchronisation. Prints a markdown table; ``--write`` writes it to
``benchmarks/results/pretrain_throughput_<device>.md``.

Run: ``.venv/bin/python benchmarks/pretrain_throughput.py [--crop 64] [--batch-size 32] [--write]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from pretrain_quality import prepare_stores  # noqa: E402 - the shared store cache of the pre-training benchmarks

METHODS = ("rs-byol", "byol", "moco-v2", "simsiam", "barlow-twins", "swav")


def _timer_callback(warmup: int):  # noqa: ANN202
    import lightning.pytorch as pl
    import torch

    class Timer(pl.Callback):
        """Wall time from the end of step ``warmup`` to the end of the last step (after a CUDA sync)."""

        def __init__(self) -> None:
            self.t0: float | None = None
            self.t1: float | None = None
            self.samples = 0

        def _sync(self, pl_module: pl.LightningModule) -> None:
            if pl_module.device.type == "cuda":
                torch.cuda.synchronize(pl_module.device)

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):  # noqa: ANN001
            step = trainer.global_step
            if step == warmup:
                self._sync(pl_module)
                self.t0 = time.perf_counter()
            elif step > warmup:
                self.samples += int(batch["s2"].shape[0])

        def on_train_end(self, trainer, pl_module):  # noqa: ANN001
            self._sync(pl_module)
            self.t1 = time.perf_counter()

        @property
        def rate(self) -> float:
            return self.samples / (self.t1 - self.t0) if self.t0 and self.t1 else float("nan")

    return Timer()


class _Repeat:
    """The same batch ``n`` times (an iterable with a length, which Lightning takes as one dataloader)."""

    def __init__(self, batch: dict, n: int) -> None:
        self.batch, self.n = batch, n

    def __len__(self) -> int:
        return self.n

    def __iter__(self):  # noqa: ANN204
        for _ in range(self.n):
            yield self.batch


def measure(method: str, data, device, args, feed: str) -> float:  # noqa: ANN001
    """images/s of ``method`` with ``feed`` = "loader" or "device"."""
    import lightning.pytorch as pl
    import torch

    from backend.ssl.registry import METHODS as REG
    from backend.train import runner

    cls = REG[method]
    cfg = runner.TrainConfig(max_steps=args.warmup + args.steps, batch_size=args.batch_size,
                             num_workers=args.num_workers, devices=args.devices, seed=0)
    sensors = ["s2"]
    config = {**cls.DEFAULTS, "encoder": "resnet18", "bands": data.bands, "sensors": sensors, "crop": args.crop,
              "batch_size": args.batch_size, "world_size": 1}
    pl.seed_everything(0, verbose=False)
    module = cls(config)
    if device.cuda:
        module = module.to(memory_format=torch.channels_last)
    loader = runner.make_loader(data.dataset, cfg, device)
    if feed == "device":
        batch = next(iter(loader))
        target = torch.device("cuda" if device.cuda else "cpu")
        batch = {k: v.to(target) for k, v in batch.items()}
        loader = _Repeat(batch, args.warmup + args.steps + 1)
    timer = _timer_callback(args.warmup)
    trainer = runner.build_trainer(cfg, device, [timer])
    trainer.fit(module, train_dataloaders=loader)
    return timer.rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--methods", nargs="*", default=list(METHODS))
    ap.add_argument("--crop", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--num-workers", type=int, default=None, help="DataLoader workers (default: the runner's)")
    ap.add_argument("--devices", default="auto")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1: on a CPU shared with other work two threads were several times slower)")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()

    import torch

    from backend.ssl.data import build_ssl_data
    from backend.train import runner

    torch.set_num_threads(args.threads)
    device = runner.resolve_device(args.devices)
    stores = prepare_stores()
    length = args.batch_size * (args.warmup + args.steps + 2)  # one epoch: no epoch boundary in the timing
    eurosat = build_ssl_data(stores["eurosat"], need_s1=False, crop=args.crop, epoch_length=length)
    pairs = build_ssl_data(stores["pairs"], need_s1=True, crop=args.crop, epoch_length=length)
    workers = args.num_workers if args.num_workers is not None else runner.default_num_workers(device.cuda)
    rows = []
    for method in args.methods:
        data = pairs if method == "rs-byol" else eurosat
        loader_rate = measure(method, data, device, args, "loader")
        device_rate = measure(method, data, device, args, "device")
        rows.append((method, loader_rate, device_rate))
        print(f"{method:13s} loader {loader_rate:8.1f} img/s   device batch {device_rate:8.1f} img/s   "
              f"ratio {loader_rate / device_rate:.2f}", flush=True)
    table = ["| method | data | loader img/s | device-batch img/s | ratio |", "|---|---|---|---|---|"]
    for method, a, b in rows:
        what = ("BEN-MM pairs + Sen1Floods11, random crops (S2 band vs S1 pol.)" if method == "rs-byol"
                else "EuroSAT-MS chips, 13 bands")
        table.append(f"| {method} | {what} | {a:.1f} | {b:.1f} | {a / b:.2f} |")
    text = "\n".join(table)
    print(text)
    if args.write:
        name = "cuda" if device.cuda else "cpu"
        out = REPO / "benchmarks" / "results" / f"pretrain_throughput_{name}.md"
        gpu_note = ("" if device.cuda else
                    "GPU: not measured — no GPU was available to this session (the device machine is lent to some "
                    "sessions only). On a GPU the same command uses AMP (bf16-mixed/16-mixed), channels_last, pinned "
                    "memory and non-blocking copies; the targets there are ratio >= 0.9 and BYOL ResNet-18 at 64 px "
                    ">= 5,000 img/s on one H100.")
        out.write_text("\n".join([
            f"# Pre-training throughput on {'CUDA' if device.cuda else 'CPU'}",
            "",
            f"Measured {dt.date.today().isoformat()}: {device.description}; "
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores shared with other work "
            f"(timings on this CPU move by tens of percent from run to run), torch {torch.__version__}. "
            f"ResNet-18, batch {args.batch_size}, views of {args.crop} px, {args.steps} timed steps after "
            f"{args.warmup} warm-up steps, {workers} DataLoader worker(s), {args.threads} torch thread(s), each "
            "method's default heads. Command: "
            f"`.venv/bin/python benchmarks/pretrain_throughput.py --crop {args.crop} --batch-size {args.batch_size} "
            f"--threads {args.threads} --write`.",
            "",
            text,
            "",
            "images/s = samples per second through the whole training step (two augmented views each: on-device "
            "batch augmentations, forward, loss, backward, SGD, EMA/queue updates) in the same Lightning Trainer as "
            "`eo-ssl pretrain`. *loader*: fed by the real DataLoader over the chip store; *device batch*: one batch "
            "already on the device, fed again and again. On a CPU the DataLoader workers and the model share the "
            "same cores, so the ratio says how much of the CPU the data pipeline takes.",
            "",
            gpu_note,
            "",
        ]))
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
