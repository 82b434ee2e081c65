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
    # the way out, in the plugin's menus (a tmp root is no checkout: no setup.sh in the hint)
    assert "Raster > eo-ssl > Set up the backend…" in report.hint and "Create the backend environment" in report.hint
    assert "Settings > Options… > eo-ssl" in report.hint and "setup.sh" not in report.hint
    assert report.summary().startswith("backend not usable")


def test_in_a_checkout_the_hint_also_names_setup_sh(tmp_path: Path) -> None:
    """A development checkout (it has scripts/setup.sh) without its .venv: setup.sh is named too."""
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "setup.sh").write_text("#!/bin/sh\n")
    report = check_backend(None, root=tmp_path, environ={})
    assert "Raster > eo-ssl > Set up the backend…" in report.hint and "bash scripts/setup.sh" in report.hint


def test_exact_checks_the_python_it_is_given(tmp_path: Path, backend_python: str, repo_root: Path) -> None:
    """The setup panel checks the user's choice itself, not the first interpreter found elsewhere."""
    missing = check_backend("/nowhere/python3", root=repo_root, environ={}, exact=True)
    assert not missing.ok and "not an executable file" in missing.error and missing.python == "/nowhere/python3"
    ok = check_backend(backend_python, root=repo_root, environ=dict(os.environ), exact=True)
    assert ok.ok and ok.python == backend_python


def test_a_python_without_the_backend_is_reported(tmp_path: Path) -> None:
    """/usr/bin/python3 run from a root with no ``backend`` package: the probe says what is missing."""
    report = check_backend("/usr/bin/python3", root=tmp_path, environ={"PATH": "/usr/bin:/bin"})
    assert not report.ok
    assert "backend_error" in report.info and "backend" in report.error
    assert "Raster > eo-ssl > Set up the backend…" in report.hint and "requirements.lock" in report.hint


def test_a_managed_venv_without_torch_is_not_a_backend(tmp_path: Path) -> None:
    """A creation cancelled before PyTorch leaves a venv with a python: it does not count as the backend (so the
    first-run panel is offered again), and the report says why."""
    from qgis_plugin.environment import venv_python

    managed = tmp_path / "profile" / "eo_ssl" / "venv"
    python = venv_python(managed)
    python.parent.mkdir(parents=True)
    python.symlink_to(sys.executable)
    assert find_backend_python(None, root=tmp_path, environ={}, managed=managed) is None
    (listed,) = [c for c in candidates(None, root=tmp_path, environ={}, managed=managed) if c.source == "managed"]
    assert listed.source == "managed" and not listed.exists and "PyTorch" in listed.note
    report = check_backend(None, root=tmp_path, environ={}, managed=managed)
    assert not report.ok and "PyTorch is not installed" in report.error
    torch_init = managed / "lib" / "python3.11" / "site-packages" / "torch" / "__init__.py"
    torch_init.parent.mkdir(parents=True)
    torch_init.write_text("")
    found = find_backend_python(None, root=tmp_path, environ={}, managed=managed)
    assert found is not None and found.source == "managed"
