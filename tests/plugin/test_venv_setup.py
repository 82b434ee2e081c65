"""The managed backend environment (venv_setup.py): reading nvidia-smi, choosing the PyTorch wheels, the exact
commands shown to the user, running them as argument lists; and the environment search with the managed venv."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

from qgis_plugin import venv_setup
from qgis_plugin.environment import candidates, find_backend_python

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
    assert rest[rest.index("-c") + 1] == str(repo_root / "constraints.txt")
    assert "rasterio" in rest and "timm" in rest and "lightning" in rest
    assert not {"pytest", "pytest-qgis", "ruff", "torch==2.14.1"} & set(rest)
    # what the user sees is exactly what runs: each line splits back into the step's argument list
    lines = plan.text().splitlines()
    assert [shlex.split(line) for line in lines] == plan.steps
    cpu = venv_setup.plan(venv, "/usr/bin/python3", root=repo_root, gpu=venv_setup.GpuInfo(False))
    assert cpu.wheel_tag == "cpu" and cpu.steps[2][-1].endswith("/whl/cpu")


def test_run_plan_streams_and_stops_at_a_failing_step(tmp_path: Path) -> None:
    ok_step = [sys.executable, "-c", "print('step one')"]
    bad_step = [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"]
    never = [sys.executable, "-c", "open(r'" + str(tmp_path / "ran") + "', 'w')"]
    plan = venv_setup.Plan(tmp_path, tmp_path / "python", [ok_step, bad_step, never], "cpu", venv_setup.GpuInfo(False))
    lines: list[str] = []
    ok, message = venv_setup.run_plan(plan, on_line=lines.append)
    assert not ok and "exit code 3" in message
    assert "step one" in lines and "boom" in lines
    assert not (tmp_path / "ran").exists()


def test_run_plan_creates_a_real_venv(tmp_path: Path) -> None:
    """The first step for real: ``python -m venv`` under a path with spaces and non-ASCII characters."""
    venv = tmp_path / "prøfile 'x'" / "venv"
    plan = venv_setup.plan(venv, "/usr/bin/python3", gpu=venv_setup.GpuInfo(False))
    plan.steps = plan.steps[:1] + [[str(plan.python), "-c", "import sys; print(sys.prefix)"]]
    lines: list[str] = []
    ok, message = venv_setup.run_plan(plan, on_line=lines.append)
    assert ok, (message, lines)
    assert plan.python.is_file() and str(venv) in lines[-1]
    # and the plugin finds it as the managed environment when nothing else is set
    found = find_backend_python(None, root=tmp_path, environ={}, managed=venv)
    assert found is not None and (found.source, found.path) == ("managed", plan.python)
    assert [c.source for c in candidates(None, root=tmp_path, environ={}, managed=venv)] == ["venv", "managed"]


def test_find_base_python() -> None:
    exe = venv_setup.find_base_python()
    assert exe is not None
    out = subprocess.run([exe, "-c", "import sys; print(sys.version_info >= (3, 11))"], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "True"
    assert venv_setup.find_base_python("/nowhere/python3") == exe  # a bad setting falls back to PATH
