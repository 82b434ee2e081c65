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
        from qgis_plugin.algorithms import ALGORITHMS

        assert len(provider.algorithms()) == len(ALGORITHMS) + 1  # the algorithms + the example model
        assert not provider.icon().isNull()
        assert Path(provider.svgIconPath()).is_file()
        assert plugin.toolbar is not None and plugin.toolbar.actions() == plugin.actions
        assert [a.objectName() for a in plugin.actions] == ["EoSslDialogAction", "EoSslLabelToolAction",
                                                            "EoSslSimilarAction"]
        assert [a.objectName() for a in plugin.menu_actions] == [
            "EoSslDialogAction", "EoSslLabelToolAction", "EoSslSimilarAction", "EoSslSetupAction", "EoSslDiagnostics",
            "EoSslModelAction",
            "EoSslOptionsAction"]
        for action in plugin.menu_actions:
            qgis_iface.addPluginToRasterMenu.assert_any_call(MENU, action)
        # the hints name these menu entries: Raster > eo-ssl > <action text>
        from qgis_plugin import names

        texts = {a.objectName(): a.text() for a in plugin.menu_actions}
        assert MENU.lstrip("&") == names.MENU
        assert texts["EoSslSetupAction"] == names.SETUP_ACTION and names.SETUP_ACTION in names.NO_BACKEND_HINT
        assert texts["EoSslDiagnostics"] == names.DIAGNOSTICS_ACTION
        # the labelling tool has its own icon, not QGIS's Identify
        identify = QgsApplication.getThemeIcon("/mActionIdentify.svg").pixmap(24, 24).toImage()
        assert plugin.actions[1].icon().pixmap(24, 24).toImage() != identify
        # the settings page in Settings > Options
        qgis_iface.registerOptionsWidgetFactory.assert_called_with(plugin.options_factory)
        factory = plugin.options_factory
        # initProcessing is idempotent (QGIS calls it on its own for hasProcessingProvider=yes)
        plugin.initProcessing()
        assert [p.id() for p in registry.providers()].count("eo_ssl") == 1
    finally:
        actions = list(plugin.menu_actions)
        plugin.unload()
    assert registry.providerById("eo_ssl") is None
    assert plugin.actions == [] and plugin.toolbar is None and plugin.provider is None
    qgis_iface.removePluginRasterMenu.assert_any_call(MENU, actions[0])
    qgis_iface.unregisterOptionsWidgetFactory.assert_called_with(factory)
    del actions, factory


def test_diagnostics_panel_shows_the_backend_report(qgis_app, qgis_iface, monkeypatch, backend_python,
                                                    tmp_path, no_eo_provider) -> None:
    """The diagnostics action: Python, backend version, torch and device, and a 'copy report' that copies it. The
    panel opens at once: the check (seconds: it imports torch in the backend's Python) runs in a task."""
    import time

    import torch
    from qgis.PyQt.QtWidgets import QApplication

    import backend
    import qgis_plugin
    from qgis_plugin import settings
    from tests.plugin.conftest import wait_until

    monkeypatch.setattr(settings, "backend_python_setting", lambda: backend_python)
    plugin = qgis_plugin.classFactory(qgis_iface)
    plugin.initGui()
    try:
        action = next(a for a in plugin.menu_actions if a.objectName() == "EoSslDiagnostics")
        t0 = time.monotonic()
        action.trigger()
        opened_in = time.monotonic() - t0
        dlg = plugin.diagnostics_dialog
        assert dlg is not None and dlg.isVisible() and dlg.task is not None
        assert opened_in < 1.0, f"the panel took {opened_in:.1f} s to open: the check must not block QGIS"
        assert wait_until(lambda: dlg.report is not None, 120)
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
        assert dlg.grab().save(str(tmp_path / "diagnostics.png"))  # docs/img: scripts/screenshots.sh
    finally:
        plugin.unload()


def test_plugin_package_does_not_import_torch(repo_root: Path) -> None:
    """Loading every plugin module (with PyQGIS) leaves torch unimported: it must never enter the QGIS process."""
    code = (
        "import sys, qgis_plugin, qgis_plugin.plugin, qgis_plugin.provider, qgis_plugin.backend_runner, "
        "qgis_plugin.environment, qgis_plugin.algorithms, qgis_plugin.dialog, qgis_plugin.parcel_labelling, "
        "qgis_plugin.diagnostics, qgis_plugin.jobs, qgis_plugin.venv_setup, qgis_plugin.setup_panel, "
        "qgis_plugin.options_page, qgis_plugin.messages, qgis_plugin.chipstores, qgis_plugin.tasks, qgis_plugin.i18n, "
        "qgis_plugin.names, qgis_plugin.shipped_models, qgis_plugin.backend_spec, qgis_plugin.class_schemes; "
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


def test_first_run_opens_the_setup_panel_then_offers_it(qgis_app, qgis_iface, monkeypatch, no_eo_provider) -> None:
    """No backend Python anywhere (a freshly installed zip): the first load opens the first-run panel by itself; later
    loads offer it in the message bar; with a backend, nothing."""
    import qgis_plugin
    from qgis_plugin import settings
    from qgis_plugin.setup_panel import BackendSetupDialog

    monkeypatch.setattr(settings, "backend_python", lambda: None)
    monkeypatch.delenv("EO_SSL_NO_FIRST_RUN", raising=False)
    offered = settings.get(settings.SETTINGS_SETUP_OFFERED)
    settings.put(settings.SETTINGS_SETUP_OFFERED, "")
    plugin = qgis_plugin.classFactory(qgis_iface)
    plugin.initGui()
    try:
        assert plugin.first_run() == "panel"
        assert isinstance(plugin.setup_dialog, BackendSetupDialog) and plugin.setup_dialog.isVisible()
        plugin.setup_dialog.close()
        assert plugin.first_run() == "message"
        monkeypatch.setattr(settings, "backend_python", lambda: object())
        assert plugin.first_run() == "none"
    finally:
        plugin.unload()
        settings.put(settings.SETTINGS_SETUP_OFFERED, offered)


def test_example_model_opens_valid_in_the_model_designer(qgis_app, qgis_iface, eo_provider, monkeypatch) -> None:
    """Raster > eo-ssl > Open the example model in the Model Designer: a copy (no file behind it, so Save asks
    where), both children valid (no red child, every parameter set)."""
    from qgis.PyQt.QtCore import QSize

    import qgis_plugin

    # pytest-qgis's stand-in for QGIS's interface: QGIS's own iconSize() takes an optional argument, returns a QSize
    monkeypatch.setattr(type(qgis_iface), "iconSize", lambda self, dockedToolbar=False: QSize(24, 24), raising=False)

    plugin = qgis_plugin.classFactory(qgis_iface)
    dlg = plugin.open_example_model()
    try:
        model = dlg.model()
        assert model.sourceFilePath() == ""
        assert set(model.childAlgorithms()) == {"predict", "label_parcels"}
        for child in model.childAlgorithms():
            ok, issues = model.validateChildAlgorithm(child)
            assert ok, (child, issues)
        assert model.validate()[0]
    finally:
        dlg.setDirty(False)
        dlg.close()
