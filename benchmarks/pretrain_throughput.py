"""Pre-training throughput: images/s of the full training step, fed by the real DataLoader vs by a batch already on
the device.

For each method, the same Lightning ``Trainer`` as ``eo-ssl pretrain`` (``backend.train.runner.build_trainer``: same
precision, channels_last and pinned memory on CUDA) runs ``--warmup`` + ``--steps`` optimiser steps of the whole
step (batch augmentations on the device, forward, loss, backward, optimiser, momentum/queue updates):

- **loader**: batches from ``runner.make_loader`` over the chip store (``backend.data.pretraining``: EuroSAT-MS chips
  for the stacked methods, random crops of the BigEarthNet-MM S1/S2 pair stores + Sen1Floods11 for rs-byol single);
- **device batch**: one batch of the same data, moved to the device once and fed again and again (the model-only
  bound).

``ratio = loader / device batch``: 1.0 means the data pipeline keeps up. images/s counts samples (each makes two
views). Timing starts after the warm-up steps (worker start-up, first kernels) and ends after a device
synchronisation.

``dense-moco`` (Embedding Earth) runs on the real Sentinel-2 series of T37MEM (its 9 dates of 2017-2018, 10 bands at
20 m, prepared with ``eo-ssl prepare --poi``): each sample is a ``1.5 x crop`` read of all dates, from which the step
draws two date subsets and two overlapping crops. Its row also gives pixels/s (samples/s x crop²) and the share of
the step taken by making the views + correspondences and by the key queue (``DenseMoCo.timing``, measured with a
device synchronisation around each part on CUDA; their means over all steps, warm-up included, over the mean whole
timed step). Prints a markdown table; ``--write`` writes it to
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

METHODS = ("rs-byol", "byol", "moco-v2", "simsiam", "barlow-twins", "swav", "dense-moco")
T37_BANDS = "B02,B03,B04,B05,B06,B07,B08,B8A,B11,B12"


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


def _dense_module(data, crop: int):  # noqa: ANN001, ANN202
    from backend.ssl.dense_moco import DenseMoCo, DenseMoCoConfig

    return DenseMoCo(DenseMoCoConfig(in_channels=len(data.bands), crop=crop))


def _stacked_module(method: str, data, args):  # noqa: ANN001, ANN202
    from backend.ssl.registry import METHODS as REG

    cls = REG[method]
    config = {**cls.DEFAULTS, "encoder": "resnet18", "bands": data.bands, "sensors": ["s2"], "crop": args.crop,
              "batch_size": args.batch_size, "world_size": 1}
    return cls(config)


def measure(method: str, data, device, args, feed: str) -> tuple[float, dict[str, float]]:  # noqa: ANN001
    """(images/s, timing shares) of ``method`` with ``feed`` = "loader" or "device"."""
    import lightning.pytorch as pl
    import torch

    from backend.train import runner

    cfg = runner.TrainConfig(max_steps=args.warmup + args.steps, batch_size=args.batch_size,
                             num_workers=args.num_workers, devices=args.devices, seed=0)
    pl.seed_everything(0, verbose=False)
    module = _dense_module(data, args.crop) if method == "dense-moco" else _stacked_module(method, data, args)
    if device.cuda:  # as the runner does (the U-Net-3D's 5-D weights stay as they are)
        from backend.models import to_channels_last

        module = to_channels_last(module)
    loader = runner.make_loader(data.dataset, cfg, device)
    if feed == "device":
        batch = next(iter(loader))
        target = torch.device("cuda" if device.cuda else "cpu")
        batch = {k: v.to(target) for k, v in batch.items()}
        loader = _Repeat(batch, args.warmup + args.steps + 1)
    timer = _timer_callback(args.warmup)
    trainer = runner.build_trainer(cfg, device, [timer])
    trainer.fit(module, train_dataloaders=loader)
    shares = {}
    if method == "dense-moco":
        t = module.timing  # seconds summed over every step, warm-up included
        whole = args.batch_size / timer.rate  # mean seconds of a whole timed step (with backward and SGD)
        n = max(t["steps"], 1)
        shares = {"views": t["views_s"] / n / whole, "queue": t["queue_s"] / n / whole}
    return timer.rate, shares


class _Data:
    """What a row trains on: the dataset and its band names."""

    def __init__(self, dataset, bands: list[str], n_dates: int = 1) -> None:  # noqa: ANN001
        self.dataset, self.bands, self.n_dates = dataset, bands, n_dates


def series_data(crop: int, length: int) -> _Data:
    """Random 1.5 x crop reads of the prepared 21-date T37MEM series (as ``pretrain --method dense-moco``)."""
    from backend.data.chipstore import ChipStore
    from backend.data.datasets import RandomCropDataset

    store = REPO / "benchmarks" / ".cache" / "pretrain" / "t37mem_series"
    if not (store / "manifest.json").exists():
        import subprocess

        data = REPO.parent / "shared" / "data" / "s2_timeseries_t37mem"
        subprocess.run([sys.executable, "-m", "backend", "prepare", "--s2", str(data), "--s2-bands", T37_BANDS,
                        "--poi", "2017-01-01/2018-12-31", "--resolution", "20", "--out", str(store), "--overwrite"],
                       check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    region = int(round(crop * 1.5 / 8)) * 8
    ds = RandomCropDataset(store, size=region, length=length, sensors=["s2"], dates="all", seed=None)
    st = ChipStore(store)
    return _Data(ds, st.bands("s2"), len(st.dates("s2")))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--methods", nargs="*", default=list(METHODS))
    ap.add_argument("--crop", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--dense-batch-size", type=int, default=8, help="batch of the dense-moco row (its default)")
    ap.add_argument("--dense-crop", type=int, default=32, help="views of the dense-moco row (its default)")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--num-workers", type=int, default=None, help="DataLoader workers (default: the runner's)")
    ap.add_argument("--devices", default="auto")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1: on a CPU shared with other work two threads were several times slower)")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()

    import torch

    from backend.data.pretraining import build_ssl_data
    from backend.train import runner

    torch.set_num_threads(args.threads)
    device = runner.resolve_device(args.devices)
    length = args.batch_size * (args.warmup + args.steps + 2)  # one epoch: no epoch boundary in the timing
    if set(args.methods) - {"dense-moco"}:
        stores = prepare_stores()
        eurosat = build_ssl_data(stores["eurosat"], need_s1=False, crop=args.crop, epoch_length=length)
        pairs = build_ssl_data(stores["pairs"], need_s1=True, crop=args.crop, epoch_length=length)
    workers = args.num_workers if args.num_workers is not None else runner.default_num_workers(device.cuda)
    rows = []
    dense_dates = 0
    for method in args.methods:
        margs = args
        if method == "dense-moco":
            margs = argparse.Namespace(**{**vars(args), "batch_size": args.dense_batch_size, "crop": args.dense_crop})
            data = series_data(args.dense_crop, args.dense_batch_size * (args.warmup + args.steps + 2))
            dense_dates = data.n_dates
        else:
            data = pairs if method == "rs-byol" else eurosat
        (loader_rate, shares), (device_rate, _) = (measure(method, data, device, margs, feed)
                                                   for feed in ("loader", "device"))
        rows.append((method, loader_rate, device_rate, shares))
        print(f"{method:13s} loader {loader_rate:8.1f} img/s   device batch {device_rate:8.1f} img/s   "
              f"ratio {loader_rate / device_rate:.2f}", flush=True)
    table = ["| method | data | batch x crop | loader img/s | device-batch img/s | ratio |",
             "|---|---|---|---|---|---|"]
    dense_note = ""
    for method, a, b, shares in rows:
        if method == "dense-moco":
            what = (f"T37MEM S2 series, {dense_dates} dates x 10 bands at 20 m (two date subsets and two crops per "
                    "sample)")
            size = f"{args.dense_batch_size} x {args.dense_crop}"
            px = args.dense_crop**2
            dense_note = (f"dense-moco: {a * px:,.0f} pixels/s with the loader ({b * px:,.0f} from a device batch); "
                          f"making the views + correspondences took {shares['views']:.1%} of the step and the key "
                          f"queue {shares['queue']:.1%} (loader run).")
        else:
            what = ("BEN-MM pairs + Sen1Floods11, random crops (S2 band vs S1 pol.)" if method == "rs-byol"
                    else "EuroSAT-MS chips, 13 bands")
            size = f"{args.batch_size} x {args.crop}"
        table.append(f"| {method} | {what} | {size} | {a:.1f} | {b:.1f} | {a / b:.2f} |")
    text = "\n".join(table)
    print(text)
    if dense_note:
        print(dense_note)
    if args.write:
        name = "cuda" if device.cuda else "cpu"
        out = REPO / "benchmarks" / "results" / f"pretrain_throughput_{name}.md"
        if device.cuda:
            gpu = torch.cuda.get_device_name(0)
            machine = f"{gpu}, {os.cpu_count()} CPU cores"
        else:
            machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores shared with other work "
                       "(timings on this CPU move by tens of percent from run to run)")
        gpu_note = ("" if device.cuda else
                    "GPU: see `pretrain_throughput_cuda.md` (measured on a lent H100). On a GPU the same command uses "
                    "AMP (bf16-mixed/16-mixed), channels_last, pinned memory and non-blocking copies.")
        out.write_text("\n".join([
            f"# Pre-training throughput on {'CUDA' if device.cuda else 'CPU'}",
            "",
            f"Measured {dt.date.today().isoformat()}: {device.description}; {machine}, torch {torch.__version__}. "
            f"ResNet-18 for the stacked methods, each method's default heads; {args.steps} timed steps after "
            f"{args.warmup} warm-up steps, {workers} DataLoader worker(s), {args.threads} torch thread(s). Command: "
            f"`python benchmarks/pretrain_throughput.py --crop {args.crop} --batch-size {args.batch_size} "
            f"--dense-batch-size {args.dense_batch_size} --dense-crop {args.dense_crop} --steps {args.steps} "
            f"--warmup {args.warmup} --threads {args.threads} --write`.",
            "",
            text,
            "",
            dense_note,
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
