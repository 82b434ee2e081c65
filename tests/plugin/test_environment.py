"""environment.py: finding the backend Python and probing it (backend version, torch, device)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import backend
from qgis_plugin.environment import ENV_VAR, candidates, check_backend, find_backend_python


@pytest.fixture(scope="module")
def report(repo_root: Path, backend_python: str):
    """One probe of the interpreter the tests run in (the venv under scripts/test.sh)."""
    return check_backend(backend_python, root=repo_root, environ=dict(os.environ))


def test_reports_backend_torch_and_device(report, backend_python: str) -> None:
    import torch

    assert report.ok, report
    assert report.source == "setting"
    assert report.python == backend_python
    info = report.info
    assert info["backend_version"] == backend.__version__
    assert info["torch"] == torch.__version__
    assert info["python"] == ".".join(map(str, sys.version_info[:3]))
    if torch.cuda.is_available():
        assert info["device"] == "cuda" and info["device_name"] == torch.cuda.get_device_name(0)
    else:
        assert info["device"] in ("cpu", "mps")
    assert info["torch"] in report.summary() and info["device_name"] in report.summary()
    assert report.to_dict()["info"] == info


def test_search_order(tmp_path: Path) -> None:
    root = tmp_path / "root"
    venv_python = root / ".venv" / "bin" / "python"
    venv_python.parent.mkdir(parents=True)
    venv_python.symlink_to(sys.executable)
    other = tmp_path / "other-python"
    other.symlink_to(sys.executable)

    # nothing set: the checkout's venv
    found = find_backend_python(None, root=root, environ={})
    assert (found.source, found.path) == ("venv", venv_python)
    # the environment variable before the venv
    found = find_backend_python(None, root=root, environ={ENV_VAR: str(other)})
    assert (found.source, found.path) == ("env", other)
    # the plugin setting before both
    found = find_backend_python(str(other), root=root, environ={ENV_VAR: "/nowhere/python"})
    assert (found.source, found.path) == ("setting", other)
    # a setting that points nowhere is listed but skipped
    listed = candidates("/nowhere/python", root=root, environ={})
    assert [(c.source, c.exists) for c in listed] == [("setting", False), ("venv", True)]


def test_nothing_found_says_what_to_do(tmp_path: Path) -> None:
    report = check_backend(None, root=tmp_path, environ={})
    assert not report.ok and report.python is None
    assert "no backend Python found" in report.error
    assert "scripts/setup.sh" in report.hint and ENV_VAR in report.hint
    assert report.summary().startswith("backend not usable")


def test_a_python_without_the_backend_is_reported(tmp_path: Path) -> None:
    """/usr/bin/python3 run from a root with no ``backend`` package: the probe says what is missing."""
    report = check_backend("/usr/bin/python3", root=tmp_path, environ={"PATH": "/usr/bin:/bin"})
    assert not report.ok
    assert "backend_error" in report.info and "backend" in report.error
    assert "setup.sh" in report.hint
