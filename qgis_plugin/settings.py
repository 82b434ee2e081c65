"""The plugin's settings (QgsSettings) and the QGIS-side glue to environment.py: which backend Python to use."""

from __future__ import annotations

from pathlib import Path

from qgis.core import QgsApplication, QgsSettings

from .environment import BackendReport, Candidate, candidates, check_backend, find_backend_python
from .paths import ROOT

SETTINGS_PYTHON = "eo_ssl/backend_python"
SETTINGS_BASE_PYTHON = "eo_ssl/base_python"
SETTINGS_LAST_OUTPUT = "eo_ssl/last_output_folder"
SETTINGS_CLASSES = "eo_ssl/last_class_scheme"


def get(key: str, default: str = "") -> str:
    return str(QgsSettings().value(key, default, type=str) or "")


def put(key: str, value: str) -> None:
    QgsSettings().setValue(key, value)


def backend_python_setting() -> str | None:
    return get(SETTINGS_PYTHON) or None


def managed_venv_dir() -> Path:
    """``<QGIS profile>/eo_ssl/venv``: where the plugin creates the backend environment when asked."""
    return Path(QgsApplication.qgisSettingsDirPath()) / "eo_ssl" / "venv"


def looked_at() -> list[Candidate]:
    return candidates(backend_python_setting(), ROOT, managed=managed_venv_dir())


def backend_python() -> Candidate | None:
    """The backend interpreter to run (setting, EO_SSL_PYTHON, checkout venv, managed venv), or None."""
    return find_backend_python(backend_python_setting(), ROOT, managed=managed_venv_dir())


def probe_backend(timeout_s: float = 120.0) -> BackendReport:
    """Run the environment probe (seconds: it imports torch in the backend's Python, never in QGIS)."""
    return check_backend(backend_python_setting(), ROOT, timeout_s=timeout_s, managed=managed_venv_dir())
