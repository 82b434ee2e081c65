"""The plugin's settings (QgsSettings) and the QGIS-side glue to environment.py: which backend Python to use, the
default device and the cache folder. The user edits them in Settings > Options… > eo-ssl (:mod:`.options_page`)."""

from __future__ import annotations

import re
from pathlib import Path

from qgis.core import QgsApplication, QgsSettings

from .environment import BackendReport, Candidate, candidates, check_backend, find_backend_python
from .paths import ROOT

SETTINGS_PYTHON = "eo_ssl/backend_python"
SETTINGS_BASE_PYTHON = "eo_ssl/base_python"
SETTINGS_DEVICE = "eo_ssl/device"
SETTINGS_CACHE = "eo_ssl/cache_folder"
SETTINGS_LAST_OUTPUT = "eo_ssl/last_output_folder"
SETTINGS_CLASSES = "eo_ssl/last_class_scheme"
SETTINGS_SETUP_OFFERED = "eo_ssl/setup_offered"

#: What the backend's ``--devices`` accepts: auto, cpu, cpu:N (N CPU processes), N (N GPUs).
DEVICE_PATTERN = re.compile(r"^(auto|cpu|cpu:[1-9][0-9]*|[1-9][0-9]*)$")


def get(key: str, default: str = "") -> str:
    return str(QgsSettings().value(key, default, type=str) or "")


def put(key: str, value: str) -> None:
    QgsSettings().setValue(key, value)


def backend_python_setting() -> str | None:
    return get(SETTINGS_PYTHON) or None


def profile_dir() -> Path:
    """``<QGIS profile>/eo_ssl``: the plugin's own folder in the user's profile."""
    return Path(QgsApplication.qgisSettingsDirPath()) / "eo_ssl"


def managed_venv_dir() -> Path:
    """``<QGIS profile>/eo_ssl/venv``: where the plugin creates the backend environment when asked."""
    return profile_dir() / "venv"


def device() -> str:
    """The default device of every run (``--devices``): the setting when it is valid, else ``auto``."""
    value = get(SETTINGS_DEVICE).strip()
    return value if DEVICE_PATTERN.match(value) else "auto"


def resolve_device(value: str | None) -> str:
    """A run's devices: its own value, or the default device of the settings when it says ``auto`` (or nothing)."""
    value = (value or "").strip()
    return device() if value in ("", "auto") else value


def default_cache_dir() -> Path:
    return profile_dir() / "cache"


def cache_dir() -> Path:
    """Where eo-ssl keeps what it can rebuild (the chip stores the dialog prepared, reused while their inputs do not
    change): the setting, else ``<QGIS profile>/eo_ssl/cache``."""
    value = get(SETTINGS_CACHE).strip()
    return Path(value).expanduser() if value else default_cache_dir()


def looked_at() -> list[Candidate]:
    return candidates(backend_python_setting(), ROOT, managed=managed_venv_dir())


def backend_python() -> Candidate | None:
    """The backend interpreter to run (setting, EO_SSL_PYTHON, checkout venv, managed venv), or None."""
    return find_backend_python(backend_python_setting(), ROOT, managed=managed_venv_dir())


def probe_backend(timeout_s: float = 120.0, python: str | None = None) -> BackendReport:
    """Run the environment probe (seconds: it imports torch in the backend's Python, never in QGIS). ``python``:
    probe this interpreter instead of the configured one (the setup panel checks a choice before saving it)."""
    return check_backend(python or backend_python_setting(), ROOT, timeout_s=timeout_s, managed=managed_venv_dir(),
                         exact=python is not None)
