"""Fixtures of the plugin tests: the eo-ssl Processing provider in the headless QGIS of pytest-qgis, small real
inputs (copied under a path with spaces, quotes and non-ASCII characters), and the backend commands present.

PyQGIS is imported inside the fixtures only: the pure-Python tests here (runner, environment, venv set-up) also run
without QGIS (``-p no:pytest_qgis``).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import time
from pathlib import Path

import pytest

#: A directory name that breaks anything that builds shell strings or assumes ASCII.
AWKWARD = "eo ssl dätä 'quoted' \"twice\" ünï"
FLANDERS_S2 = ("S2_20170824.tif", "S2_20170827.tif")
FLANDERS_S1 = ("S1_20170807.tif",)
_KEEP_ALIVE: list = []


def backend_command_module(name: str) -> str | None:
    """The module of a backend command: ``prepare`` lives in backend.cli, the others in backend/commands.py."""
    from backend.cli import COMMANDS as CORE

    if name in CORE:
        return CORE[name][0]
    from backend.commands import COMMANDS

    entry = COMMANDS.get(name)
    return entry[0] if entry else None


def command_available(name: str) -> bool:
    module = backend_command_module(name)
    try:
        return module is not None and importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def require_command(name: str) -> None:
    """Skip (with the reason in the summary) when the backend command's module has not landed yet; when it is there
    the test runs and must pass."""
    module = backend_command_module(name)
    if module is None:
        pytest.fail(f"backend/commands.py does not list the command {name!r} the plugin offers")
    try:
        present = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        present = False
    if not present:
        pytest.skip(f"backend command {name!r} not landed yet ({module} missing): this test runs once it is there")


@pytest.fixture(scope="session")
def _eo_session(qgis_app, qgis_processing, backend_python):
    """Once per session: the backend Python in the plugin settings; the provider removed at the end."""
    from qgis.core import QgsApplication

    from qgis_plugin import settings

    settings.put(settings.SETTINGS_PYTHON, backend_python)
    yield
    registry = QgsApplication.processingRegistry()
    if registry.providerById("eo_ssl") is not None:
        registry.removeProvider("eo_ssl")


def ensure_provider():
    """The eo-ssl provider, registered (once; plugin tests may take it away and put a new one back)."""
    from qgis.core import QgsApplication

    from qgis_plugin.provider import EoSslProvider

    registry = QgsApplication.processingRegistry()
    if registry.providerById("eo_ssl") is None:
        provider = EoSslProvider()
        assert registry.addProvider(provider)
        _KEEP_ALIVE[:] = [provider]  # the Python object must outlive the registration (its methods are Python)
    return registry.providerById("eo_ssl")


@pytest.fixture()
def eo_provider(_eo_session):
    return ensure_provider()


@pytest.fixture(scope="module")
def eo_provider_module(_eo_session):
    return ensure_provider()


@pytest.fixture(scope="session")
def awkward_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("plugin") / AWKWARD
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def flanders(shared_data: Path, awkward_dir: Path) -> dict[str, object]:
    """Two Sentinel-2 dates, one Sentinel-1 date, the 19 LPIS parcels and the label raster (WorldCereal crop codes) of
    the WorldCereal Flanders patch (64 x 64 px at 10 m, real data), copied under a path with spaces, quotes and
    non-ASCII characters."""
    src = shared_data / "worldcereal_flanders_2018"
    dst = awkward_dir / "flanders"
    (dst / "s2").mkdir(parents=True)
    (dst / "s1").mkdir()
    for name in FLANDERS_S2:
        shutil.copy2(src / "s2" / name, dst / "s2" / name)
    for name in FLANDERS_S1:
        shutil.copy2(src / "s1" / name, dst / "s1" / name)
    shutil.copy2(src / "parcels.gpkg", dst / "parcels.gpkg")
    shutil.copy2(src / "labels.tif", dst / "labels.tif")
    return {"dir": dst, "s2": [dst / "s2" / n for n in FLANDERS_S2], "s1": [dst / "s1" / n for n in FLANDERS_S1],
            "parcels": dst / "parcels.gpkg", "class_field": "ct_name", "labels": dst / "labels.tif"}


def wait_until(predicate, timeout_s: float = 60.0, step_s: float = 0.05) -> bool:
    """Process Qt events until ``predicate()`` is true (tasks, queued signals) or the time is up."""
    from qgis.PyQt.QtCore import QCoreApplication

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        QCoreApplication.processEvents()
        if predicate():
            return True
        time.sleep(step_s)
    QCoreApplication.processEvents()
    return bool(predicate())


@pytest.fixture(scope="session")
def docs_img(repo_root: Path, tmp_path_factory) -> Path:
    """Where the screenshot tests save their PNGs: docs/img/ with EO_SSL_UPDATE_SCREENSHOTS=1 (to refresh the README's
    pictures), else a temporary folder (a normal test run leaves the working tree alone)."""
    if os.environ.get("EO_SSL_UPDATE_SCREENSHOTS") == "1":
        path = repo_root / "docs" / "img"
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("screenshots")


def python_for_tests() -> str:
    return sys.executable


#: The feedback methods a :class:`Recorder` keeps the texts of, and the list each goes to.
RECORDED = {"pushInfo": "infos", "pushCommandInfo": "commands", "pushWarning": "warnings",
            "pushConsoleInfo": "console", "reportError": "errors"}


class Recorder:
    """A QgsProcessingFeedback that keeps what the algorithm reported (:data:`RECORDED`)."""

    def __new__(cls):
        from qgis.core import QgsProcessingFeedback

        def keeping(method: str, kept: str):
            """``method`` that also appends its text to the list ``kept``."""
            def push(self, text, *args):
                getattr(self, kept).append(text)
                getattr(QgsProcessingFeedback, method)(self, text, *args)
            return push

        class _Feedback(QgsProcessingFeedback):
            def __init__(self) -> None:
                super().__init__()
                for kept in RECORDED.values():
                    setattr(self, kept, [])
                self.progress_values: list[float] = []
                self.progressChanged.connect(self.progress_values.append)

        for method, kept in RECORDED.items():  # before any instance: sip sees the overrides
            setattr(_Feedback, method, keeping(method, kept))
        return _Feedback()


def run_alg(alg_id: str, params: dict, feedback=None, context=None) -> dict:
    import processing

    return processing.run(alg_id, params, feedback=feedback or Recorder(), context=context)


@pytest.fixture(scope="session")
def prepared(_eo_session, flanders, awkward_dir: Path) -> dict:
    """Prepare data through processing.run: S2 + S1 layers (file paths under an awkward folder name), parcels + class
    field, a POI; the real backend."""
    require_command("prepare")
    ensure_provider()
    out = awkward_dir / "chip store ü"
    feedback = Recorder()
    params = {"S2": [str(p) for p in flanders["s2"]], "S1": [str(p) for p in flanders["s1"]],
              "PARCELS": str(flanders["parcels"]), "CLASS_FIELD": flanders["class_field"],
              "POI_START": "2017-08-01", "POI_END": "2017-12-31", "OUTPUT": str(out)}
    results = run_alg("eo_ssl:prepare", params, feedback)
    return {"results": results, "feedback": feedback, "out": out}


@pytest.fixture(scope="session")
def pretrained(prepared, awkward_dir: Path) -> dict:
    """A few steps of RS-BYOL (S2 band vs S1 polarisation) on the prepared chip store, on the CPU."""
    require_command("pretrain")
    ensure_provider()
    out = awkward_dir / "pretrained ü"
    feedback = Recorder()
    results = run_alg("eo_ssl:pretrain", {
        "DATA": str(prepared["out"]), "METHOD": "rs-byol", "VARIANT": "single", "ENCODER": "resnet18",
        "EPOCHS": 1, "MAX_STEPS": 3, "BATCH_SIZE": 4, "CROP": 32, "DEVICES": "cpu", "OUTPUT": str(out)}, feedback)
    return {"results": results, "feedback": feedback, "out": out}


@pytest.fixture(scope="session")
def finetuned(request, prepared, awkward_dir: Path) -> dict:
    """A few steps of segmentation fine-tuning on the prepared parcels, from the pre-trained package when the
    pretrain command exists, else from a random initialisation."""
    require_command("finetune")
    ensure_provider()
    try:
        init = str(request.getfixturevalue("pretrained")["out"])
    except pytest.skip.Exception:
        init = ""
    out = awkward_dir / "finetuned ü"
    feedback = Recorder()
    # a few steps normally; more when the screenshots are refreshed, so that the pictured map means something
    steps = 150 if os.environ.get("EO_SSL_UPDATE_SCREENSHOTS") == "1" else 3
    params = {"DATA": str(prepared["out"]), "TASK": "segmentation", "EPOCHS": 50, "MAX_STEPS": steps,
              "BATCH_SIZE": 4, "CROP": 64, "DEVICES": "cpu", "OUTPUT": str(out)}
    if init:
        params["INIT"] = init
    results = run_alg("eo_ssl:finetune", params, feedback)
    return {"results": results, "feedback": feedback, "out": out, "init": init or "random"}


FAKE_PIP = r'''
"""A stand-in for pip: prints what pip prints, records its arguments, and fails or hangs on request
(FAKE_PIP_MODE = ok | fail | hang)."""
import json, os, sys, time
args = sys.argv[1:]
with open(os.environ["FAKE_PIP_LOG"], "a", encoding="utf-8") as f:
    f.write(json.dumps(args) + "\n")
mode = os.environ.get("FAKE_PIP_MODE", "ok")
names = [a for a in args if not a.startswith("-") and "/" not in a and a not in ("install", "pip")]
for name in names[:3]:
    print(f"Collecting {name}", flush=True)
    print(f"  Downloading {name.split('==')[0]}-1.0-py3-none-any.whl (1.0 MB)", flush=True)
if mode == "hang" and "torch==2.14.1" in args:
    time.sleep(120)  # a 2 GB download: nothing printed for minutes
if mode == "fail" and "torch==2.14.1" in args:
    print("ERROR: Could not find a version that satisfies the requirement torch==2.14.1", flush=True)
    sys.exit(1)
print("Installing collected packages: " + ", ".join(names), flush=True)
print("Successfully installed " + " ".join(names), flush=True)
'''


def fake_base_python(folder: Path) -> Path:
    """A "python" to create the managed environment with, for tests: ``-m venv DIR`` makes ``DIR/bin/python``, whose
    ``-m pip ...`` runs a fake pip (FAKE_PIP above; no download) and anything else runs the test interpreter (so the
    new environment passes the backend check). Set FAKE_PIP_LOG (and FAKE_PIP_MODE) in the environment."""
    folder.mkdir(parents=True, exist_ok=True)
    pip = folder / "fake_pip.py"
    pip.write_text(FAKE_PIP)
    wrapper = folder / "venv_python.sh"
    wrapper.write_text("#!/bin/sh\n"
                       'if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then\n'
                       f'  shift 2; exec "{sys.executable}" "{pip}" "$@"\n'
                       "fi\n"
                       f'exec "{sys.executable}" "$@"\n')
    base = folder / "python3"
    base.write_text("#!/bin/sh\n"
                    'if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then\n'
                    f'  mkdir -p "$3/bin" && cp "{wrapper}" "$3/bin/python" && chmod +x "$3/bin/python" && '
                    'echo "created a virtual environment in $3"; exit $?\n'
                    "fi\n"
                    f'exec "{sys.executable}" "$@"\n')
    for path in (wrapper, base):
        path.chmod(0o755)
    return base


@pytest.fixture()
def keep_settings():
    """Put the eo-ssl settings a test changes back as they were."""
    from qgis_plugin import settings

    keys = [settings.SETTINGS_PYTHON, settings.SETTINGS_BASE_PYTHON, settings.SETTINGS_DEVICE, settings.SETTINGS_CACHE,
            settings.SETTINGS_SETUP_OFFERED]
    before = {k: settings.get(k) for k in keys}
    yield
    for key, value in before.items():
        settings.put(key, value)


@pytest.fixture()
def project_layers(flanders, qgis_new_project):
    """The Flanders S2 dates, S1 date and parcels as project layers (S2 shown as true colour)."""
    from qgis.core import QgsProject, QgsRasterLayer, QgsVectorLayer

    from tests.plugin.rendering import true_colour

    project = QgsProject.instance()
    s2 = [QgsRasterLayer(str(p), p.stem) for p in flanders["s2"]]
    s1 = [QgsRasterLayer(str(p), p.stem) for p in flanders["s1"]]
    parcels = QgsVectorLayer(str(flanders["parcels"]), "LPIS parcels", "ogr")
    for layer in [*s2, *s1, parcels]:
        assert layer.isValid(), layer.source()
    project.addMapLayers([*s2, *s1, parcels])
    true_colour(s2[0])
    yield {"s2": s2, "s1": s1, "parcels": parcels}
    project.removeAllMapLayers()
    del s2, s1, parcels
