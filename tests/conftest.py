"""Shared fixtures for all test folders (backend/, plugin/, e2e/).

QGIS: pytest-qgis starts one headless QgsApplication for the session (``qgis_gui_enabled = false`` in
pyproject.toml). A backend-only run on a machine without PyQGIS: ``python -m pytest -p no:pytest_qgis tests/backend``
(tests/plugin is then skipped as a whole, see tests/plugin/conftest.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
SAMPLE_DIR = REPO / "resources" / "sample"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The checkout (holds backend/, qgis_plugin/, resources/)."""
    return REPO


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``<repo>/../shared/data``: the full collection of real Sentinel samples (see its SOURCES.md)."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data not found: the real Sentinel samples live beside the checkout")
    return SHARED_DATA


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """``resources/sample``: the small real sample shipped with the project (see its ATTRIBUTION.md)."""
    assert SAMPLE_DIR.is_dir(), f"{SAMPLE_DIR} is missing: it is part of the repository"
    return SAMPLE_DIR


@pytest.fixture(scope="session")
def backend_python() -> str:
    """The interpreter the tests run in; it has the backend's dependencies (.venv/bin/python under scripts/test.sh)."""
    return sys.executable


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without pytest-qgis (``-p no:pytest_qgis``, or no PyQGIS on this machine) tests marked ``qgis`` are skipped
    with a reason instead of erroring on a missing fixture; the pure-Python plugin tests (runner, environment,
    import rules) still run."""
    if config.pluginmanager.has_plugin("pytest_qgis"):
        return
    skip = pytest.mark.skip(reason="pytest-qgis disabled or PyQGIS missing: QGIS tests not run")
    for item in items:
        if item.get_closest_marker("qgis"):
            item.add_marker(skip)
