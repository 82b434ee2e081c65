"""The managed backend environment: a virtual environment in the user's QGIS profile with the backend's
dependencies (torch, rasterio, timm, ...). Pure Python: no qgis, no torch.

The plugin never installs anything into QGIS's own Python. It *offers* to create ``<profile>/eo_ssl/venv`` and
shows the exact commands first (:func:`plan`): ``python -m venv``, then ``pip install`` of torch/torchvision from
the PyTorch wheel index that matches the GPU driver (CUDA version read from ``nvidia-smi``; the CPU wheels when
there is no NVIDIA GPU), then the other backend packages of ``requirements.txt`` with ``constraints.txt`` and
``requirements.lock`` as constraints, so that every package gets the version the project is tested with (the lock is
a constraint, not a list to install: packages another platform does not need are not forced onto it). The three
files ship inside the plugin. The backend code itself is not installed into the venv: the plugin ships ``backend/``
and runs it with ``PYTHONPATH`` = the plugin folder, so plugin and backend versions always match.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .backend_runner import SCRUBBED_ENV
from .environment import venv_python
from .names import QT_TRANSLATE_NOOP
from .paths import ROOT

#: Packages of requirements.txt for tests and benchmarks only, not backend dependencies.
DEV_ONLY = {"pytest", "pytest-qgis", "ruff", "torchgeo", "psutil"}
TORCH_PACKAGES = ("torch", "torchvision")
PYTORCH_INDEX = "https://download.pytorch.org/whl/{tag}"
#: (minimum driver CUDA version, wheel tag), newest first: the newest CUDA build the driver can run.
CUDA_WHEELS = ((13.0, "cu130"), (12.8, "cu128"), (12.6, "cu126"))
#: The Python versions the pinned packages of requirements.lock have wheels for (numpy 1.26: up to 3.12; pandas 3:
#: from 3.11).
SUPPORTED_PYTHONS = ((3, 11), (3, 12))
LOCK_FILES = ("requirements.txt", "requirements.lock", "constraints.txt")


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


@dataclass
class BasePython:
    """A Python to create the venv with, or why none fits (``exe`` is None then)."""

    exe: str | None
    version: tuple[int, int] = (0, 0)
    problems: list[str] = field(default_factory=list)

    def describe(self) -> str:
        if self.exe:
            return f"{self.exe} (Python {self.version[0]}.{self.version[1]})"
        wanted = " or ".join(f"{a}.{b}" for a, b in SUPPORTED_PYTHONS)
        found = "; ".join(self.problems) or "none on the PATH"
        return f"no Python {wanted} with the venv module was found ({found})"


def _probe_python(exe: str) -> tuple[tuple[int, int], bool]:
    """(major, minor) and whether ``venv`` + ``ensurepip`` import (Debian splits them into python3-venv)."""
    code = ("import sys\ntry:\n    import ensurepip, venv\n    ok = 1\nexcept ImportError:\n    ok = 0\n"
            "print(sys.version_info[0], sys.version_info[1], ok)")
    try:
        out = subprocess.run([exe, "-c", code], capture_output=True, text=True, timeout=20, check=False,
                             stdin=subprocess.DEVNULL)
        major, minor, ok = (int(v) for v in out.stdout.split())
        return (major, minor), bool(ok)
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return (0, 0), False


def python_version(exe: str) -> tuple[int, int]:
    return _probe_python(exe)[0]


def base_python(setting: str | None = None) -> BasePython:
    """A Python 3.11/3.12 with ``venv`` to create the environment with: the setting, else ``python3.12``,
    ``python3.11``, ``python3``, ``python`` on the PATH. Never the interpreter QGIS runs in (on Windows and macOS
    that is QGIS's own executable)."""
    names = [setting] if setting else []
    names += ["python3.12", "python3.11", "python3", "python"] if os.name != "nt" else ["py", "python"]
    problems: list[str] = []
    seen: set[str] = set()
    for name in names:
        exe = name if (name and os.path.isabs(name)) else shutil.which(name or "")
        if not exe or exe in seen or not os.path.isfile(exe):
            continue
        seen.add(exe)
        version, has_venv = _probe_python(exe)
        if version not in SUPPORTED_PYTHONS:
            problems.append(f"{exe} is Python {version[0]}.{version[1]}")
        elif not has_venv:
            problems.append(f"{exe} has no venv module (Debian/Ubuntu: install python3-venv)")
        else:
            return BasePython(exe, version, problems)
    return BasePython(None, (0, 0), problems)


def find_base_python(setting: str | None = None) -> str | None:
    return base_python(setting).exe


@dataclass
class Plan:
    venv: Path
    python: Path  # the venv's interpreter
    steps: list[list[str]]
    wheel_tag: str
    gpu: GpuInfo

    def text(self) -> str:
        """The exact commands, one a line, quoted for the user's shell (display only: they run as lists)."""
        return "\n".join(describe_step(step) for step in self.steps)


def plan(venv: Path | str, base_python: str, root: Path = ROOT, gpu: GpuInfo | None = None) -> Plan:
    """The commands that create the managed venv (nothing is run here)."""
    venv = Path(venv)
    gpu = detect_gpu() if gpu is None else gpu
    tag = torch_wheel_tag(gpu)
    py = venv_python(venv)
    torch_reqs, others = read_requirements(root)
    pip = [str(py), "-m", "pip", "install", "--disable-pip-version-check"]
    steps = [[base_python, "-m", "venv", str(venv)],
             [*pip, "--upgrade", "pip"]]
    if torch_reqs:
        index = [] if sys.platform == "darwin" else ["--index-url", PYTORCH_INDEX.format(tag=tag)]
        steps.append([*pip, *torch_reqs, *index])
    rest = [*pip]
    for name in ("constraints.txt", "requirements.lock"):
        if (root / name).is_file():
            rest += ["-c", str(root / name)]
    steps.append([*rest, *others])
    return Plan(venv, py, steps, tag, gpu)


def step_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of the commands: no PYTHONHOME/PYTHONPATH or GDAL/PROJ paths of QGIS's own Python."""
    env = {k: v for k, v in (os.environ if environ is None else environ).items() if k not in SCRUBBED_ENV}
    env.update(PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8", PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


def _stop(proc: subprocess.Popen, grace_s: float) -> None:
    """SIGTERM (the whole process group on POSIX: pip's build helpers too), then a kill after ``grace_s``."""
    def signal_group(sig: int) -> None:
        if os.name == "posix":
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, sig)
        elif sig == signal.SIGTERM:
            proc.terminate()
        else:
            proc.kill()

    signal_group(signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        signal_group(getattr(signal, "SIGKILL", signal.SIGTERM))


def _read_lines(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))
    lines.put(None)


def run_plan(the_plan: Plan, on_line: Callable[[str], None] | None = None,
             is_cancelled: Callable[[], bool] | None = None, on_step: Callable[[int, int], None] | None = None,
             grace_s: float = 5.0, poll_s: float = 0.1) -> tuple[bool, str]:
    """Run the steps in order (argument lists, no shell), streaming their output to ``on_line`` and announcing
    each step to ``on_step(index, count)``. Cancel is honoured within ``poll_s`` even while a step prints nothing
    (pip downloading a 2 GB wheel): the step gets SIGTERM, then a kill after ``grace_s``.
    Returns (ok, message); the message is "cancelled" after a cancel."""
    cancelled = is_cancelled or (lambda: False)
    emit = on_line or (lambda _line: None)
    count = len(the_plan.steps)
    for index, step in enumerate(the_plan.steps):
        if cancelled():
            return False, "cancelled"
        if on_step is not None:
            on_step(index, count)
        emit("$ " + describe_step(step))
        popen_kw: dict = {"start_new_session": True} if os.name == "posix" else {}
        try:
            proc = subprocess.Popen(step, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    text=True, encoding="utf-8", errors="replace", env=step_env(), **popen_kw)
        except OSError as exc:
            return False, f"could not run {step[0]}: {exc}"
        lines: queue.Queue[str | None] = queue.Queue()
        reader = threading.Thread(target=_read_lines, args=(proc.stdout, lines), daemon=True)
        reader.start()
        stopped = False
        while True:
            try:
                line = lines.get(timeout=poll_s)
            except queue.Empty:
                line = ""
            if line is None:
                break
            if line:
                emit(line)
            if not stopped and cancelled():
                stopped = True
                emit("Cancel: stopping this step…")
                threading.Thread(target=_stop, args=(proc, grace_s), daemon=True).start()
        code = proc.wait()
        reader.join(timeout=5)
        if proc.stdout is not None:
            with contextlib.suppress(OSError):
                proc.stdout.close()
        if stopped:
            return False, "cancelled"
        if code != 0:
            return False, f"step {index + 1} of {count} failed (exit code {code}): {describe_step(step[:6])} ..."
    return True, f"created {the_plan.venv}"


def describe_step(step: Sequence[str]) -> str:
    return subprocess.list2cmdline(step) if os.name == "nt" else shlex.join(step)


def step_title(step: Sequence[str]) -> str:
    """What a step of the plan does, in a few words (the panel's status line when the step starts)."""
    if "venv" in step and "-m" in step and "pip" not in step:
        return QT_TRANSLATE_NOOP("@default", "creating the virtual environment")
    if "--upgrade" in step and "pip" in step[step.index("--upgrade") + 1:]:
        return QT_TRANSLATE_NOOP("@default", "upgrading pip")
    if any(str(a).split("=")[0] in ("torch", "torchvision") for a in step):
        return QT_TRANSLATE_NOOP("@default", "installing PyTorch (the largest download)")
    return QT_TRANSLATE_NOOP("@default", "installing the backend's packages")


def pip_status(line: str) -> str | None:
    """A short "what pip does now" from one line of its output (for the progress text), or None."""
    text = line.strip()
    for prefix in ("Collecting ", "Downloading ", "Installing collected packages", "Successfully installed",
                   "Building wheel", "Requirement already satisfied"):
        if text.startswith(prefix):
            return text if len(text) <= 120 else text[:117] + "…"
    return None
