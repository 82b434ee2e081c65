"""The managed backend environment: a virtual environment in the user's QGIS profile with the backend's
dependencies (torch, rasterio, timm, ...). Pure Python: no qgis, no torch.

The plugin never installs anything into QGIS's own Python. It *offers* to create ``<profile>/eo_ssl/venv`` and
shows the exact commands first (:func:`plan`): ``python -m venv``, then ``pip install`` of torch/torchvision from
the PyTorch wheel index that matches the GPU driver (CUDA version read from ``nvidia-smi``; the CPU wheels when
there is no NVIDIA GPU), then the other backend packages under ``constraints.txt``. The backend code itself is not
installed into the venv: the plugin ships ``backend/`` and runs it with ``PYTHONPATH`` = the plugin folder, so
plugin and backend versions always match.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .environment import venv_python
from .paths import ROOT

#: Packages of requirements.txt that are development tools, not backend dependencies.
DEV_ONLY = {"pytest", "pytest-qgis", "ruff"}
TORCH_PACKAGES = ("torch", "torchvision")
PYTORCH_INDEX = "https://download.pytorch.org/whl/{tag}"
#: (minimum driver CUDA version, wheel tag), newest first: the newest CUDA build the driver can run.
CUDA_WHEELS = ((13.0, "cu130"), (12.8, "cu128"), (12.6, "cu126"))
MIN_PYTHON = (3, 11)


@dataclass
class GpuInfo:
    """What ``nvidia-smi`` says (nothing when it is absent or fails)."""

    found: bool
    driver_cuda: float | None = None
    names: list[str] = field(default_factory=list)
    driver_version: str | None = None
    message: str = ""

    def describe(self) -> str:
        if not self.found:
            return self.message or "no NVIDIA GPU (nvidia-smi not found)"
        names = ", ".join(self.names) or "NVIDIA GPU"
        return f"{names}; driver {self.driver_version or '?'}, supports CUDA {self.driver_cuda or '?'}"


def parse_nvidia_smi(text: str) -> GpuInfo:
    """The driver's CUDA version and GPU names from plain ``nvidia-smi`` output."""
    cuda = re.search(r"CUDA Version:\s*([0-9]+)\.([0-9]+)", text)
    driver = re.search(r"Driver Version:\s*([0-9.]+)", text)
    names = re.findall(r"^\|\s+\d+\s+(.+?)\s{2,}(?:On|Off)\s", text, flags=re.MULTILINE)
    if cuda is None:
        return GpuInfo(False, message="nvidia-smi gave no CUDA version")
    return GpuInfo(True, float(f"{cuda.group(1)}.{cuda.group(2)}"), [n.strip() for n in names],
                   driver.group(1) if driver else None)


def detect_gpu(nvidia_smi: str | None = None, timeout_s: float = 15.0) -> GpuInfo:
    exe = nvidia_smi or shutil.which("nvidia-smi")
    if not exe:
        return GpuInfo(False, message="no NVIDIA GPU (nvidia-smi not found)")
    try:
        proc = subprocess.run([exe], capture_output=True, text=True, timeout=timeout_s, check=False,
                              stdin=subprocess.DEVNULL, errors="replace")
    except (OSError, subprocess.TimeoutExpired) as exc:
        return GpuInfo(False, message=f"nvidia-smi failed: {exc}")
    if proc.returncode != 0:
        return GpuInfo(False, message=f"nvidia-smi failed (exit {proc.returncode}): {proc.stderr.strip()[:200]}")
    return parse_nvidia_smi(proc.stdout)


def torch_wheel_tag(gpu: GpuInfo) -> str:
    """``cu130``/``cu128``/``cu126`` for a driver that runs that CUDA, else ``cpu``."""
    if gpu.found and gpu.driver_cuda is not None:
        for minimum, tag in CUDA_WHEELS:
            if gpu.driver_cuda >= minimum:
                return tag
    return "cpu"


def read_requirements(root: Path = ROOT) -> tuple[list[str], list[str]]:
    """(torch pins, other backend packages) from ``requirements.txt`` (development tools left out)."""
    path = root / "requirements.txt"
    torch_reqs: list[str] = []
    others: list[str] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name = re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0].lower()
        if name in DEV_ONLY:
            continue
        (torch_reqs if name in TORCH_PACKAGES else others).append(line)
    return torch_reqs, others


def find_base_python(setting: str | None = None) -> str | None:
    """A Python >= 3.11 to create the venv with: the setting, else ``python3``/``python`` on PATH. Never the
    interpreter QGIS runs in (on Windows that is qgis.exe's embedded one)."""
    names = [setting] if setting else []
    names += ["python3.12", "python3.11", "python3", "python"] if os.name != "nt" else ["py", "python"]
    for name in names:
        exe = name if (name and os.path.isabs(name)) else shutil.which(name or "")
        if exe and python_version(exe) >= MIN_PYTHON:
            return exe
    return None


def python_version(exe: str) -> tuple[int, int]:
    try:
        out = subprocess.run([exe, "-c", "import sys; print(sys.version_info[0], sys.version_info[1])"],
                             capture_output=True, text=True, timeout=20, check=False, stdin=subprocess.DEVNULL)
        major, minor = (int(v) for v in out.stdout.split())
        return major, minor
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return 0, 0


@dataclass
class Plan:
    venv: Path
    python: Path  # the venv's interpreter
    steps: list[list[str]]
    wheel_tag: str
    gpu: GpuInfo

    def text(self) -> str:
        """The exact commands, one a line, quoted for the user's shell (display only: they run as lists)."""
        join = subprocess.list2cmdline if os.name == "nt" else shlex.join
        return "\n".join(join(step) for step in self.steps)


def plan(venv: Path | str, base_python: str, root: Path = ROOT, gpu: GpuInfo | None = None) -> Plan:
    """The commands that create the managed venv (nothing is run here)."""
    venv = Path(venv)
    gpu = detect_gpu() if gpu is None else gpu
    tag = torch_wheel_tag(gpu)
    py = venv_python(venv)
    torch_reqs, others = read_requirements(root)
    constraints = root / "constraints.txt"
    pip = [str(py), "-m", "pip", "install", "--disable-pip-version-check"]
    steps = [[base_python, "-m", "venv", str(venv)],
             [*pip, "--upgrade", "pip"]]
    if torch_reqs:
        index = [] if sys.platform == "darwin" else ["--index-url", PYTORCH_INDEX.format(tag=tag)]
        steps.append([*pip, *torch_reqs, *index])
    rest = [*pip]
    if constraints.is_file():
        rest += ["-c", str(constraints)]
    steps.append([*rest, *others])
    return Plan(venv, py, steps, tag, gpu)


def run_plan(the_plan: Plan, on_line: Callable[[str], None] | None = None,
             is_cancelled: Callable[[], bool] | None = None, runner: Callable[..., subprocess.Popen] | None = None
             ) -> tuple[bool, str]:
    """Run the steps in order (argument lists, no shell), streaming their output to ``on_line``.
    Returns (ok, message)."""
    popen = runner or subprocess.Popen
    for step in the_plan.steps:
        if is_cancelled is not None and is_cancelled():
            return False, "cancelled"
        if on_line is not None:
            on_line("$ " + (subprocess.list2cmdline(step) if os.name == "nt" else shlex.join(step)))
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "PYTHONPATH")}
        try:
            proc = popen(step, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         text=True, errors="replace", env=env)
        except OSError as exc:
            return False, f"could not run {step[0]}: {exc}"
        assert proc.stdout is not None
        for line in proc.stdout:
            if on_line is not None:
                on_line(line.rstrip("\n"))
            if is_cancelled is not None and is_cancelled():
                proc.terminate()
        code = proc.wait()
        if code != 0:
            return False, f"step failed (exit code {code}): {shlex.join(step[:6])} ..."
    return True, f"created {the_plan.venv}"


def describe_step(step: Sequence[str]) -> str:
    return subprocess.list2cmdline(step) if os.name == "nt" else shlex.join(step)
