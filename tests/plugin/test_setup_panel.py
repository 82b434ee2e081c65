"""The way from an installed plugin to a working backend, in the headless QGIS: the first-run panel (the exact
commands shown first, progress while a fake pip runs, Cancel, a log to copy, the new environment checked and used;
or an existing Python checked and used) and the eo-ssl page of Settings > Options (backend Python, device, cache)."""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path

import pytest

from tests.plugin.conftest import fake_base_python, wait_until

pytestmark = pytest.mark.qgis


@pytest.fixture()
def fake_tools(tmp_path: Path, monkeypatch) -> dict:
    base = fake_base_python(tmp_path / "bin")
    log = tmp_path / "pip-calls.jsonl"
    monkeypatch.setenv("FAKE_PIP_LOG", str(log))
    monkeypatch.setenv("FAKE_PIP_MODE", "ok")
    return {"base": base, "log": log}


def _panel(tmp_path: Path, base: Path, repo_root: Path):
    from qgis_plugin import venv_setup
    from qgis_plugin.setup_panel import BackendSetupDialog

    panel = BackendSetupDialog()
    plan = venv_setup.plan(tmp_path / "profile" / "eo_ssl" / "venv", str(base), root=repo_root,
                           gpu=venv_setup.GpuInfo(False))
    panel.set_plan(plan, venv_setup.BasePython(str(base), (3, 11)), venv_setup.GpuInfo(False))
    return panel, plan


def test_create_shows_the_commands_then_runs_them_with_progress(qgis_app, keep_settings, fake_tools, tmp_path: Path,
                                                                repo_root: Path) -> None:
    from qgis.PyQt.QtWidgets import QApplication

    from qgis_plugin import settings
    from qgis_plugin.venv_setup import describe_step

    panel, plan = _panel(tmp_path, fake_tools["base"], repo_root)
    ready: list = []
    panel.backendReady.connect(ready.append)
    panel.show()
    try:
        # before anything runs: where, which PyTorch build, and the exact commands
        assert panel.commands.toPlainText() == plan.text()
        assert panel.commands.toPlainText().splitlines()[0] == describe_step(plan.steps[0])
        assert "CPU build" in panel.torch_label.text()
        assert panel.create_button.isEnabled() and not panel.cancel_button.isEnabled()
        progress: list[int] = []
        panel.progress.valueChanged.connect(progress.append)
        assert panel.start_creation()
        assert not panel.create_button.isEnabled() and panel.cancel_button.isEnabled()
        assert panel.start_creation() is False  # one run at a time
        assert wait_until(lambda: bool(ready), 120), panel.log_text()
        # progress went through the steps; the log has every command and pip's lines
        assert progress[-1] == 100 and len(set(progress)) >= 4, progress
        log = panel.log_text()
        for step in plan.steps:
            assert "$ " + describe_step(step) in log
        assert "Successfully installed" in log and "Checking the new environment" in log
        calls = [json.loads(line) for line in fake_tools["log"].read_text().splitlines()]
        assert calls == [step[3:] for step in plan.steps[1:]]
        # the new environment was checked, and is now the backend Python
        assert ready[0].ok and settings.backend_python_setting() == str(plan.python)
        assert "Ready" in panel.create_status.text()
        assert panel.copy_log() == QApplication.clipboard().text() == log
        saved = settings.profile_dir() / "create-venv.log"
        assert saved.is_file() and "Successfully installed" in saved.read_text()
        panel.resize(860, 640)
        assert panel.grab().save(str(tmp_path / "created.png"))
    finally:
        panel.close()
        panel.deleteLater()


def test_cancel_and_failure_are_said_and_can_be_retried(qgis_app, keep_settings, fake_tools, tmp_path: Path,
                                                        repo_root: Path, monkeypatch) -> None:
    from qgis_plugin import settings

    before = settings.backend_python_setting()
    panel, plan = _panel(tmp_path, fake_tools["base"], repo_root)
    panel.show()
    try:
        monkeypatch.setenv("FAKE_PIP_MODE", "hang")  # the torch step prints a line, then nothing for 2 minutes
        assert panel.start_creation()
        assert wait_until(lambda: "Downloading torch" in panel.log_text(), 60), panel.log_text()
        t0 = time.monotonic()
        panel.cancel_button.click()
        assert wait_until(lambda: panel.create_task is None, 15)
        assert time.monotonic() - t0 < 8
        assert "Cancelled" in panel.create_status.text() and panel.create_button.isEnabled()
        assert settings.backend_python_setting() == before  # nothing was switched to the half-made environment
        monkeypatch.setenv("FAKE_PIP_MODE", "fail")
        assert panel.start_creation()
        assert wait_until(lambda: panel.create_task is None, 60)
        assert "Failed" in panel.create_status.text() and "could not find a version" in panel.log_text().lower()
        assert panel.create_button.isEnabled()
    finally:
        panel.close()
        panel.deleteLater()


def test_use_an_existing_python(qgis_app, keep_settings, backend_python: str, tmp_path: Path) -> None:
    from qgis_plugin import settings
    from qgis_plugin.setup_panel import BackendSetupDialog

    settings.put(settings.SETTINGS_PYTHON, "")
    panel = BackendSetupDialog()
    ready: list = []
    panel.backendReady.connect(ready.append)
    panel.tabs.setCurrentIndex(1)
    try:
        panel.python_widget.setFilePath(str(tmp_path / "no python here"))
        assert panel.use_existing()
        assert wait_until(lambda: panel.check_task is None, 60)
        assert "Not usable" in panel.existing_status.text() and not ready
        assert settings.backend_python_setting() is None
        panel.python_widget.setFilePath(backend_python)
        assert panel.use_existing()
        assert wait_until(lambda: bool(ready), 120), panel.existing_status.text()
        assert ready[0].ok and settings.backend_python_setting() == backend_python
        assert "Ready" in panel.existing_status.text()
    finally:
        panel.close()
        panel.deleteLater()


def test_the_panel_finds_a_python_and_shows_the_real_plan(qgis_app, keep_settings) -> None:
    """Opened for real: it looks for a Python 3.11/3.12 and the GPU in a task, then shows the commands that would
    create <profile>/eo_ssl/venv (nothing runs until 'Create the backend environment' is clicked)."""
    from qgis_plugin import settings
    from qgis_plugin.setup_panel import BackendSetupDialog

    settings.put(settings.SETTINGS_BASE_PYTHON, "")
    panel = BackendSetupDialog()
    panel.show()
    try:
        assert panel.plan_task is not None
        assert wait_until(lambda: panel.plan is not None or panel.plan_task is None, 60)
        assert panel.plan is not None, panel.torch_label.text()
        lines = panel.commands.toPlainText().splitlines()
        assert lines[0] == shlex.join([panel.plan.steps[0][0], "-m", "venv", str(settings.managed_venv_dir())])
        assert "requirements.lock" in lines[-1] and "download.pytorch.org" in lines[2]
        assert panel.create_button.isEnabled() and panel.create_task is None
        assert not settings.managed_venv_dir().exists()  # nothing ran
    finally:
        panel.close()
        panel.deleteLater()


def test_options_page(qgis_app, keep_settings, backend_python: str, tmp_path: Path) -> None:
    """Settings > Options… > eo-ssl: the backend Python (checked in a task), the default device (what 'auto' of
    every run means) and the cache folder (its size, emptied on request)."""
    from qgis_plugin import settings
    from qgis_plugin.options_page import CHIPSTORES, EoSslOptionsFactory, empty_cache, folder_size

    opened: list[bool] = []
    factory = EoSslOptionsFactory(lambda: opened.append(True))
    assert factory.title() == "eo-ssl" and not factory.icon().isNull()
    page = factory.createWidget(None)
    try:
        assert page.objectName() == "EoSslOptionsPage"
        page.python.setFilePath(backend_python)
        assert page.check()
        assert wait_until(lambda: page.check_task is None, 120)
        assert "Ready" in page.status.text()
        page.setup_button.click()
        assert opened == [True]
        page.set_device("cpu")
        cache = tmp_path / "my cache"
        page.cache.setFilePath(str(cache))
        page.apply()
        assert settings.backend_python_setting() == backend_python
        assert settings.device() == "cpu" and settings.resolve_device("auto") == "cpu"
        assert settings.resolve_device("2") == "2" and settings.cache_dir() == cache
        page.set_device("cpu:2")
        page.apply()
        assert settings.device() == "cpu:2"
        page.set_device("lots of GPUs")  # not something --devices takes: back to auto
        page.apply()
        assert settings.device() == "auto"
        store = cache / CHIPSTORES / "0123abcd"
        store.mkdir(parents=True)
        (store / "s2.npy").write_bytes(b"x" * 2048)
        page.update_cache_size()
        assert "2.0 KB" in page.cache_size.text()
        assert empty_cache(cache) == 2048 and folder_size(cache / CHIPSTORES) == 0
        page.resize(700, 520)
        assert page.grab().save(str(tmp_path / "settings.png"))
    finally:
        page.deleteLater()


def test_the_status_line_follows_the_steps_and_the_log_its_end(qgis_app, keep_settings, fake_tools, tmp_path: Path,
                                                              repo_root: Path) -> None:
    """While pip runs, the log shows its last line (it stayed at line 1), and the status line under the bar names the
    step the bar names, from the step's first moment (it said 'Step 2 of 4' under 'Step 3 of 4')."""
    panel, plan = _panel(tmp_path, fake_tools["base"], repo_root)
    panel.resize(860, 640)
    panel.show()
    try:
        bar = panel.log.verticalScrollBar()
        panel._pending += ["\0step 1 4"] + [f"Collecting package{i}" for i in range(80)] + ["\0step 2 4"]
        panel._flush()
        assert "Step 3 of 4" in panel.progress.format()
        assert panel.create_status.text().startswith("Step 3 of 4: installing PyTorch"), panel.create_status.text()
        assert wait_until(lambda: bar.maximum() > 0, 5) and bar.value() == bar.maximum()
        panel._pending += ["Collecting torch", "\0step 3 4", "Downloading x"]
        panel._flush()
        assert panel.create_status.text().startswith("Step 4 of 4: Downloading x")
        assert bar.value() == bar.maximum()
    finally:
        panel.close()
        panel.deleteLater()
