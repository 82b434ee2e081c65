"""The plugin in a real, headless QGIS (pytest-qgis): load, register the Processing provider, unload."""

from __future__ import annotations

import configparser
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.qgis


def test_plugin_loads_registers_provider_and_unloads(qgis_app, qgis_iface) -> None:
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
        assert not provider.icon().isNull()
        assert Path(provider.svgIconPath()).is_file()
        assert plugin.toolbar is not None and plugin.toolbar.actions() == plugin.actions
        assert len(plugin.actions) >= 1
        qgis_iface.addPluginToRasterMenu.assert_any_call(MENU, plugin.actions[0])
        # initProcessing is idempotent (QGIS calls it on its own for hasProcessingProvider=yes)
        plugin.initProcessing()
        assert [p.id() for p in registry.providers()].count("eo_ssl") == 1
    finally:
        actions = list(plugin.actions)
        plugin.unload()
    assert registry.providerById("eo_ssl") is None
    assert plugin.actions == [] and plugin.toolbar is None and plugin.provider is None
    qgis_iface.removePluginRasterMenu.assert_any_call(MENU, actions[0])
    del actions


def test_diagnostics_action_shows_the_backend_report(qgis_app, qgis_iface, monkeypatch, backend_python) -> None:
    import qgis_plugin
    from qgis_plugin import plugin as plugin_module

    shown: list[tuple[str, str]] = []
    monkeypatch.setattr(plugin_module.QMessageBox, "information", lambda _p, title, text: shown.append((title, text)))
    monkeypatch.setattr(plugin_module.QMessageBox, "warning", lambda _p, title, text: shown.append((title, text)))
    plugin = qgis_plugin.classFactory(qgis_iface)
    monkeypatch.setattr(plugin, "backend_python_setting", lambda: backend_python)
    plugin.initGui()
    try:
        plugin.actions[0].trigger()
    finally:
        plugin.unload()
    assert len(shown) == 1
    title, text = shown[0]
    assert title == "eo-ssl backend"
    assert text.startswith("<b>OK</b>") and "torch" in text and backend_python in text


def test_plugin_package_does_not_import_torch(repo_root: Path) -> None:
    """Loading every plugin module (with PyQGIS) leaves torch unimported: it must never enter the QGIS process."""
    code = (
        "import sys, qgis_plugin, qgis_plugin.plugin, qgis_plugin.provider, qgis_plugin.backend_runner, "
        "qgis_plugin.environment; print('torch' in sys.modules, 'backend' in sys.modules)"
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
