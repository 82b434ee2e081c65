"""The one reading of ``--devices`` (with ``--strategy``, ``--precision``, ``--num-nodes``): :func:`resolve_device`
gives a :class:`DeviceChoice`, the Trainer's arguments for the training commands (:mod:`backend.train.runner`) and,
through :attr:`DeviceChoice.torch_device`, the one device of ``predict``, ``embed`` and ``evaluate``.

``auto`` (one GPU if there is one, else the CPU), ``cpu``, ``cpu:N`` (N CPU processes), ``N`` (N GPUs; N CPU
processes when there is no GPU), ``cuda`` / ``gpu``, ``cuda:N`` (that GPU) or GPU ids like ``0,1``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch

from backend.errors import EoSslError


@dataclass
class DeviceChoice:
    accelerator: str
    devices: int | list[int] | str
    strategy: Any
    precision: str
    num_nodes: int
    description: str

    @property
    def cuda(self) -> bool:
        return self.accelerator == "gpu"

    @property
    def torch_device(self) -> torch.device:
        """The device of a one-process run (``predict``, ``embed``, ``evaluate``): the first GPU asked for, or the
        CPU."""
        if not self.cuda:
            return torch.device("cpu")
        return torch.device(f"cuda:{self.devices[0] if isinstance(self.devices, list) else 0}")

    @property
    def world_size(self) -> int:
        n = len(self.devices) if isinstance(self.devices, list) else int(self.devices)
        return n * self.num_nodes


def resolve_device(devices: str = "auto", strategy: str = "auto", precision: str = "auto",
                   num_nodes: int = 1) -> DeviceChoice:
    """Turn the user's ``--devices/--strategy/--precision`` into Trainer arguments, with a one-line description."""
    has_cuda = torch.cuda.is_available()
    n_cuda = torch.cuda.device_count() if has_cuda else 0
    spec = str(devices).strip().lower()
    dev: int | list[int]
    if spec in ("auto", ""):
        accelerator, dev = ("gpu", 1) if has_cuda else ("cpu", 1)
    elif spec == "cpu":
        accelerator, dev = "cpu", 1
    elif spec.startswith("cpu:"):
        accelerator, dev = "cpu", _positive_int(spec[4:], "--devices cpu:N")
    elif spec in ("gpu", "cuda"):
        accelerator, dev = "gpu", 1
    elif spec.startswith(("cuda:", "gpu:")):
        accelerator, dev = "gpu", [_positive_int(spec.split(":", 1)[1], "--devices", zero_ok=True)]
    elif "," in spec:
        accelerator, dev = "gpu", [_positive_int(s, "--devices", zero_ok=True) for s in spec.split(",") if s]
    else:
        n = _positive_int(spec, "--devices")
        accelerator, dev = ("gpu", n) if has_cuda else ("cpu", n)
    if accelerator == "gpu":
        if not has_cuda:
            raise EoSslError("no_gpu", f"--devices {devices} asks for a GPU but torch sees none "
                             f"(torch {torch.__version__}, CUDA build: {torch.version.cuda}).",
                             "Use --devices cpu, or install a CUDA build of torch and the NVIDIA driver.")
        wanted = max(dev) + 1 if isinstance(dev, list) else dev
        if wanted > n_cuda:
            raise EoSslError("not_enough_gpus", f"--devices {devices} needs {wanted} GPU(s); there are {n_cuda}.",
                             f"Use --devices {n_cuda} or fewer.")
    n_procs = (len(dev) if isinstance(dev, list) else dev) * num_nodes
    strat: Any = strategy
    if strategy == "auto" and n_procs > 1:
        strat = "ddp"
    prec = str(precision).lower()
    if prec == "auto":
        if accelerator == "gpu":
            prec = "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
        else:
            prec = "32-true"
    elif prec in ("32", "32-true"):
        prec = "32-true"
    elif prec in ("16", "16-mixed") and accelerator == "cpu":
        prec = "32-true"  # fp16 autocast on CPU is slow and unsupported by many ops; said in the description
    if accelerator == "gpu":
        names = sorted({torch.cuda.get_device_name(i) for i in range(n_cuda)})
        what = f"{n_procs} x CUDA GPU ({', '.join(names)})"
    else:
        what = f"CPU ({os.cpu_count()} cores, {torch.get_num_threads()} threads)" + (
            f" in {n_procs} processes" if n_procs > 1 else "")
    desc = f"training on {what}, precision {prec}" + (f", strategy {strat}" if strat != "auto" else "")
    if str(precision).lower() in ("16", "16-mixed") and accelerator == "cpu":
        desc += " (16-mixed asked for, but there is no GPU: 32-bit on the CPU)"
    return DeviceChoice(accelerator, dev, strat, prec, num_nodes, desc)


def _positive_int(text: str, option: str, zero_ok: bool = False) -> int:
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < (0 if zero_ok else 1):
        raise EoSslError("bad_argument", f"{option}: {text!r} is not a valid count.",
                         "Use auto, cpu, cpu:N, N, cuda:N or a list of GPU ids like 0,1.")
    return n


def inference_text(device: torch.device) -> str:
    """The ``log`` line of a one-process inference on ``device`` (``predict``, ``embed``)."""
    if device.type == "cuda":
        return f"CUDA GPU {torch.cuda.get_device_name(device)} (AMP, channels_last)"
    return f"CPU ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"
