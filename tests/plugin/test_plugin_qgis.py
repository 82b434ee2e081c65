"""The plugin in a real, headless QGIS (pytest-qgis): load, register the Processing provider, unload."""

from __future__ import annotations

import configparser
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.qgis


@pytest.fixture()
def no_eo_provider(qgis_app):
    """These tests register the provider through the plugin: take away the session's (algorithm tests) meanwhile."""
    from qgis.core import QgsApplication

    from tests.plugin.conftest import ensure_provider

    registry = QgsApplication.processingRegistry()
    before = registry.providerById("eo_ssl")
    if before is not None:
        registry.removeProvider(before)
    yield
    if before is not None:
        ensure_provider()


def test_plugin_loads_registers_provider_and_unloads(qgis_app, qgis_iface, no_eo_provider) -> None:
    from qgis.core import QgsApplication

    import qgis_plugin
    from qgis_plugin.plugin import MENU

    registry = QgsApplication.processingRegistry()
    assert registry.providerById("eo_ssl") is None

    plugin = qgis_plugin.classFactory(qgis_iface)
    plugin.initGui()
    try:
        provider = registry.providerById("eo_ssl")
        assert provider is not None
        assert provider.name() == "eo-ssl"
        assert len(provider.algorithms()) == 8  # seven algorithms + the example model
        assert not provider.icon().isNull()
        assert Path(provider.svgIconPath()).is_file()
        assert plugin.toolbar is not None and plugin.toolbar.actions() == plugin.actions
        assert [a.objectName() for a in plugin.actions] == ["EoSslDialogAction", "EoSslLabelToolAction"]
        assert [a.objectName() for a in plugin.menu_actions][-1] == "EoSslDiagnostics"
        for action in plugin.menu_actions:
            qgis_iface.addPluginToRasterMenu.assert_any_call(MENU, action)
        # initProcessing is idempotent (QGIS calls it on its own for hasProcessingProvider=yes)
        plugin.initProcessing()
        assert [p.id() for p in registry.providers()].count("eo_ssl") == 1
    finally:
        actions = list(plugin.menu_actions)
        plugin.unload()
    assert registry.providerById("eo_ssl") is None
    assert plugin.actions == [] and plugin.toolbar is None and plugin.provider is None
    qgis_iface.removePluginRasterMenu.assert_any_call(MENU, actions[0])
    del actions


def test_diagnostics_panel_shows_the_backend_report(qgis_app, qgis_iface, monkeypatch, backend_python,
                                                    docs_img, no_eo_provider) -> None:
    """The diagnostics action: Python, backend version, torch and device, and a 'copy report' that copies it."""
    import torch
    from qgis.PyQt.QtWidgets import QApplication

    import backend
    import qgis_plugin
    from qgis_plugin import settings

    monkeypatch.setattr(settings, "backend_python_setting", lambda: backend_python)
    plugin = qgis_plugin.classFactory(qgis_iface)
    plugin.initGui()
    try:
        plugin.menu_actions[-1].trigger()
        dlg = plugin.diagnostics_dialog
        assert dlg is not None and dlg.isVisible()
        report = dlg.report
        assert report.ok, report
        text = dlg.copy_button.click() or QApplication.clipboard().text()
        assert text == dlg.text
        assert f"backend version: {backend.__version__}" in text
        assert f"torch: {torch.__version__}" in text
        assert f"backend python: {backend_python} (from setting)" in text
        assert "device: " in text and "nvidia-smi: " in text and "plugin version: " in text
        assert "Ready" in dlg.status.text()
        dlg.resize(800, 560)
        assert dlg.grab().save(str(docs_img / "diagnostics.png"))
    finally:
        plugin.unload()


def test_plugin_package_does_not_import_torch(repo_root: Path) -> None:
    """Loading every plugin module (with PyQGIS) leaves torch unimported: it must never enter the QGIS process."""
    code = (
        "import sys, qgis_plugin, qgis_plugin.plugin, qgis_plugin.provider, qgis_plugin.backend_runner, "
        "qgis_plugin.environment, qgis_plugin.algorithms, qgis_plugin.dialog, qgis_plugin.maptool, "
        "qgis_plugin.diagnostics, qgis_plugin.jobs, qgis_plugin.venv_setup; "
        "print('torch' in sys.modules, 'backend' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin", "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(repo_root)})
    assert out.stdout.split() == ["False", "False"], out.stderr


def test_metadata_icon_and_version(repo_root: Path) -> None:
    from qgis.PyQt.QtSvg import QSvgRenderer

    meta = configparser.ConfigParser(interpolation=None)
    meta.read(repo_root / "metadata.txt", encoding="utf-8")
    general = meta["general"]
    with open(repo_root / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)["project"]
    assert project["version"] == general["version"], "pyproject.toml's version must follow metadata.txt"
    assert general["hasProcessingProvider"] == "yes"
    icon = repo_root / general["icon"]
    assert icon.is_file()
    assert QSvgRenderer(str(icon)).isValid()


def test_diagnostics_offers_the_managed_environment_with_its_commands(qgis_app, monkeypatch) -> None:
    """'Create environment...' shows the exact commands (venv in the QGIS profile, the torch wheels for this machine,
    the backend packages) before anything runs; cancelling runs nothing."""
    from qgis.PyQt.QtWidgets import QMessageBox

    from qgis_plugin import settings
    from qgis_plugin.diagnostics import DiagnosticsDialog

    shown: list[tuple[str, str]] = []

    def fake_exec(box):
        shown.append((box.text(), box.informativeText()))
        return QMessageBox.StandardButton.Cancel

    monkeypatch.setattr(QMessageBox, "exec", fake_exec)
    dlg = DiagnosticsDialog()
    created: list = []
    monkeypatch.setattr(dlg, "create_venv", created.append)
    dlg.offer_venv()
    assert len(shown) == 1 and not created
    text, commands = shown[0]
    venv = settings.managed_venv_dir()
    assert str(venv) in text
    lines = commands.splitlines()
    assert lines[0].endswith(f"-m venv {venv}") or lines[0].endswith(f"-m venv '{venv}'")
    assert any("torch==" in line and "--index-url https://download.pytorch.org/whl/" in line for line in lines)
    assert "rasterio" in lines[-1]
    dlg.deleteLater()
