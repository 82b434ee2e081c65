"""The managed backend environment (venv_setup.py): reading nvidia-smi, choosing the PyTorch wheels, the exact
commands shown to the user (from the files the plugin zip ships), running them as argument lists with a fake pip
(no download), cancelling a silent step; and the environment search with the managed venv."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

from qgis_plugin import venv_setup
from qgis_plugin.environment import candidates, find_backend_python
from tests.plugin.conftest import fake_base_python

NVIDIA_SMI = """\
Mon Nov 23 08:00:00 2026
+-----------------------------------------------------------------------------------------+
| NVIDIA-SMI 570.86.15              Driver Version: 570.86.15      CUDA Version: 12.8     |
|-----------------------------------------+------------------------+----------------------+
| GPU  Name                 Persistence-M | Bus-Id          Disp.A | Volatile Uncorr. ECC |
|=========================================+========================+======================|
|   0  NVIDIA H100 80GB HBM3          On  |   00000000:00:07.0 Off |                    0 |
+-----------------------------------------+------------------------+----------------------+
"""


def test_parse_nvidia_smi_and_choose_wheels() -> None:
    gpu = venv_setup.parse_nvidia_smi(NVIDIA_SMI)
    assert gpu.found and gpu.driver_cuda == 12.8 and gpu.driver_version == "570.86.15"
    assert gpu.names == ["NVIDIA H100 80GB HBM3"]
    assert venv_setup.torch_wheel_tag(gpu) == "cu128"
    assert venv_setup.torch_wheel_tag(venv_setup.parse_nvidia_smi(NVIDIA_SMI.replace("12.8", "13.1"))) == "cu130"
    assert venv_setup.torch_wheel_tag(venv_setup.parse_nvidia_smi(NVIDIA_SMI.replace("12.8", "11.8"))) == "cpu"
    assert venv_setup.torch_wheel_tag(venv_setup.GpuInfo(False)) == "cpu"
    assert "H100" in gpu.describe()


def test_detect_gpu_runs_nvidia_smi(tmp_path: Path) -> None:
    fake = tmp_path / "nvidia-smi"
    fake.write_text(f"#!/bin/sh\ncat <<'EOF'\n{NVIDIA_SMI}EOF\n")
    fake.chmod(0o755)
    assert venv_setup.detect_gpu(str(fake)).driver_cuda == 12.8
    broken = tmp_path / "broken-smi"
    broken.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n")
    broken.chmod(0o755)
    gpu = venv_setup.detect_gpu(str(broken))
    assert not gpu.found and "exit 9" in gpu.message


def test_plan_is_the_exact_commands(repo_root: Path, tmp_path: Path) -> None:
    venv = tmp_path / "profile with space" / "eo_ssl" / "venv"
    gpu = venv_setup.parse_nvidia_smi(NVIDIA_SMI)
    plan = venv_setup.plan(venv, "/usr/bin/python3", root=repo_root, gpu=gpu)
    assert plan.steps[0] == ["/usr/bin/python3", "-m", "venv", str(venv)]
    torch_step = plan.steps[2]
    assert torch_step[:3] == [str(venv / "bin" / "python"), "-m", "pip"]
    assert "torch==2.14.1" in torch_step and "torchvision==0.29.1" in torch_step
    assert torch_step[-2:] == ["--index-url", "https://download.pytorch.org/whl/cu128"]
    rest = plan.steps[3]
    # the other packages under the constraints and the lock's exact versions (the lock is a constraint: packages
    # another platform does not need are not forced onto it)
    constraints = [rest[i + 1] for i, a in enumerate(rest) if a == "-c"]
    assert constraints == [str(repo_root / "constraints.txt"), str(repo_root / "requirements.lock")]
    assert "rasterio" in rest and "timm" in rest and "lightning" in rest
    assert not {"pytest", "pytest-qgis", "ruff", "torchgeo", "psutil", "torch==2.14.1"} & set(rest)
    # what the user sees is exactly what runs: each line splits back into the step's argument list
    lines = plan.text().splitlines()
    assert [shlex.split(line) for line in lines] == plan.steps
    cpu = venv_setup.plan(venv, "/usr/bin/python3", root=repo_root, gpu=venv_setup.GpuInfo(False))
    assert cpu.wheel_tag == "cpu" and cpu.steps[2][-1].endswith("/whl/cpu")


def test_the_zip_alone_holds_what_the_environment_needs(repo_root: Path, tmp_path: Path) -> None:
    """The installed plugin (the zip, no scripts/, no checkout) builds the same commands from its own copies of
    requirements.txt, requirements.lock and constraints.txt."""
    sys.path.insert(0, str(repo_root / "scripts"))
    try:
        import build_plugin
    finally:
        sys.path.remove(str(repo_root / "scripts"))
    target = build_plugin.build(tmp_path / "dist")
    with zipfile.ZipFile(target) as zf:
        zf.extractall(tmp_path / "plugins")
    installed = tmp_path / "plugins" / "eo_ssl"
    assert not (installed / "scripts").exists()
    plan = venv_setup.plan(tmp_path / "venv", "/usr/bin/python3", root=installed, gpu=venv_setup.GpuInfo(False))
    rest = plan.steps[-1]
    assert [rest[i + 1] for i, a in enumerate(rest) if a == "-c"] == [
        str(installed / "constraints.txt"), str(installed / "requirements.lock")]
    assert all(Path(rest[i + 1]).is_file() for i, a in enumerate(rest) if a == "-c")
    checkout = venv_setup.plan(tmp_path / "venv", "/usr/bin/python3", root=repo_root, gpu=venv_setup.GpuInfo(False))
    assert [s[:3] for s in plan.steps] == [s[:3] for s in checkout.steps]
    assert [[a for a in s if "/" not in a] for s in plan.steps] == [[a for a in s if "/" not in a]
                                                                    for s in checkout.steps]


def test_run_plan_streams_and_stops_at_a_failing_step(tmp_path: Path) -> None:
    ok_step = [sys.executable, "-c", "print('step one')"]
    bad_step = [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"]
    never = [sys.executable, "-c", "open(r'" + str(tmp_path / "ran") + "', 'w')"]
    plan = venv_setup.Plan(tmp_path, tmp_path / "python", [ok_step, bad_step, never], "cpu", venv_setup.GpuInfo(False))
    lines: list[str] = []
    steps: list[tuple[int, int]] = []
    ok, message = venv_setup.run_plan(plan, on_line=lines.append, on_step=lambda i, n: steps.append((i, n)))
    assert not ok and "exit code 3" in message and "step 2 of 3" in message
    assert "step one" in lines and "boom" in lines
    assert steps == [(0, 3), (1, 3)]
    assert not (tmp_path / "ran").exists()


def test_the_plan_runs_with_a_fake_pip(repo_root: Path, tmp_path: Path, monkeypatch) -> None:
    """The real plan (venv, pip, torch from the wheel index, the rest under the lock), run as it would run, with a
    stand-in for ``python -m venv`` and pip: every pip command line is exactly the one shown."""
    base = fake_base_python(tmp_path / "bin")
    log = tmp_path / "pip-calls.jsonl"
    monkeypatch.setenv("FAKE_PIP_LOG", str(log))
    monkeypatch.setenv("FAKE_PIP_MODE", "ok")
    venv = tmp_path / "profile dir" / "eo_ssl" / "venv"
    plan = venv_setup.plan(venv, str(base), root=repo_root, gpu=venv_setup.GpuInfo(False))
    lines: list[str] = []
    ok, message = venv_setup.run_plan(plan, on_line=lines.append)
    assert ok, (message, lines)
    assert plan.python.is_file()
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert calls == [step[3:] for step in plan.steps[1:]]  # [python, -m, pip] + these arguments
    assert [line for line in lines if line.startswith("$ ")] == ["$ " + venv_setup.describe_step(s)
                                                                 for s in plan.steps]
    assert any(line.startswith("Collecting torch==2.14.1") for line in lines)
    assert venv_setup.pip_status("Collecting torch==2.14.1") == "Collecting torch==2.14.1"
    assert venv_setup.pip_status("  some other line") is None


def test_cancel_stops_a_step_that_prints_nothing(repo_root: Path, tmp_path: Path, monkeypatch) -> None:
    """pip downloading a 2 GB wheel prints nothing for minutes: Cancel still stops it within seconds."""
    base = fake_base_python(tmp_path / "bin")
    monkeypatch.setenv("FAKE_PIP_LOG", str(tmp_path / "pip-calls.jsonl"))
    monkeypatch.setenv("FAKE_PIP_MODE", "hang")
    plan = venv_setup.plan(tmp_path / "venv", str(base), root=repo_root, gpu=venv_setup.GpuInfo(False))
    lines: list[str] = []
    cancel = threading.Event()
    outcome: list[tuple[bool, str]] = []
    runner = threading.Thread(target=lambda: outcome.append(venv_setup.run_plan(
        plan, on_line=lines.append, is_cancelled=cancel.is_set, grace_s=2.0)))
    runner.start()
    deadline = time.monotonic() + 60
    while not any("Downloading torch" in line for line in lines) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert any("Downloading torch" in line for line in lines), lines
    time.sleep(0.5)  # inside the silent download
    t0 = time.monotonic()
    cancel.set()
    runner.join(timeout=10)
    elapsed = time.monotonic() - t0
    assert not runner.is_alive() and outcome == [(False, "cancelled")]
    assert elapsed < 3.0, f"cancel took {elapsed:.1f} s"
    assert len([line for line in lines if line.startswith("$ ")]) == 3  # the last step never started


def test_run_plan_creates_a_real_venv(tmp_path: Path) -> None:
    """The first step for real: ``python -m venv`` under a path with spaces and non-ASCII characters."""
    venv = tmp_path / "prøfile 'x'" / "venv"
    plan = venv_setup.plan(venv, "/usr/bin/python3", gpu=venv_setup.GpuInfo(False))
    plan.steps = plan.steps[:1] + [[str(plan.python), "-c", "import sys; print(sys.prefix)"]]
    lines: list[str] = []
    ok, message = venv_setup.run_plan(plan, on_line=lines.append)
    assert ok, (message, lines)
    assert plan.python.is_file() and str(venv) in lines[-1]
    # without PyTorch in it (this step alone installs none) it is no backend yet: a cancelled creation must not count
    # (test_environment checks that one with torch is found as the managed environment)
    assert find_backend_python(None, root=tmp_path, environ={}, managed=venv) is None
    assert [c.source for c in candidates(None, root=tmp_path, environ={}, managed=venv)] == ["venv", "managed"]


def test_base_python_says_why_none_fits(tmp_path: Path) -> None:
    too_new = tmp_path / "python3.13"
    too_new.write_text("#!/bin/sh\necho 3 13 1\n")
    no_venv = tmp_path / "python3.11"
    no_venv.write_text("#!/bin/sh\necho 3 11 0\n")
    for path in (too_new, no_venv):
        path.chmod(0o755)
    found = venv_setup.base_python(str(too_new))
    assert found.exe is not None and found.exe != str(too_new)  # falls back to a good one on the PATH
    assert f"{too_new} is Python 3.13" in found.problems
    assert venv_setup.base_python(str(no_venv)).problems[0].endswith("has no venv module (Debian/Ubuntu: install "
                                                                     "python3-venv)")
    none = venv_setup.BasePython(None, problems=[f"{too_new} is Python 3.13"])
    assert "no Python 3.11 or 3.12" in none.describe() and "3.13" in none.describe()


def test_find_base_python() -> None:
    exe = venv_setup.find_base_python()
    assert exe is not None
    out = subprocess.run([exe, "-c", "import sys; print(sys.version_info >= (3, 11))"], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "True"
    assert venv_setup.find_base_python("/nowhere/python3") == exe  # a bad setting falls back to PATH
