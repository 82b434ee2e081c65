"""The installable zip: built by scripts/build_plugin.py, unpacked into a clean QGIS profile with no backend
anywhere, and loaded by the real ``qgis`` binary under Xvfb. The startup script walks the way a new user walks: the
first-run panel opens by itself; its "Create the backend environment" tab shows the commands, built from the files
inside the installed plugin; its "Use an existing Python" tab checks and saves an interpreter; then one real
``prepare`` runs through Processing with the backend copy inside the installed plugin, the dialog opens, and the
eo-ssl page is in Settings > Options. It writes a marker file; then QGIS exits."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.qgis

STARTUP = r'''
import json, os, time, traceback
from pathlib import Path
from qgis.core import QgsApplication
from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtWidgets import QApplication, QWidget
import qgis.utils

MARKER = Path(os.environ["EO_SSL_TEST_MARKER"])
result = {}


def wait(predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():
        QApplication.processEvents()
        time.sleep(0.05)
    return bool(predicate())


def finish():
    MARKER.write_text(json.dumps(result))
    QTimer.singleShot(0, lambda: QApplication.instance().exit(0))


def options_page():
    dialog = QApplication.activeModalWidget()
    pages = [w.objectName() for w in dialog.findChildren(QWidget)] if dialog is not None else []
    result["options_page"] = "EoSslOptionsPage" in pages
    if dialog is not None:
        dialog.reject()


def walk():
    try:
        result["plugins"] = sorted(qgis.utils.plugins)
        result["active"] = qgis.utils.isPluginLoaded("eo_ssl")
        plugin = qgis.utils.plugins.get("eo_ssl")
        registry = QgsApplication.processingRegistry()
        provider = registry.providerById("eo_ssl")
        result["provider"] = provider is not None
        result["algorithms"] = sorted(a.id() for a in provider.algorithms()) if provider else []
        result["plugin_dir"] = str(Path(__import__(plugin.__class__.__module__).__file__))
        # the first-run panel opened by itself (no backend anywhere)
        result["panel"] = wait(lambda: plugin.setup_dialog is not None and plugin.setup_dialog.isVisible(), 30)
        panel = plugin.setup_dialog
        wait(lambda: panel.plan is not None or panel.plan_task is None, 60)
        result["commands"] = panel.commands.toPlainText()
        result["create_enabled"] = panel.create_button.isEnabled()
        # "Use an existing Python": checked, then saved
        panel.tabs.setCurrentIndex(1)
        panel.python_widget.setFilePath(os.environ["EO_SSL_TEST_BACKEND"])
        panel.use_button.click()
        result["ready"] = wait(lambda: panel.last_report is not None, 120) and panel.last_report.ok
        result["existing_status"] = panel.existing_status.text()
        panel.close()
        import processing
        out = Path(os.environ["EO_SSL_TEST_OUT"])
        res = processing.run("eo_ssl:prepare", {"S2": [os.environ["EO_SSL_TEST_S2"]], "OUTPUT": str(out)})
        manifest = json.loads((Path(res["OUTPUT"]) / "manifest.json").read_text())
        result["prepared"] = True
        result["backend_argv0"] = manifest["provenance"]["command"][0]
        plugin.show_dialog()
        result["dialog"] = plugin.dialog is not None and plugin.dialog.isVisible()
        result["toolbar"] = [a.objectName() for a in plugin.actions]
        plugin.dialog.close()
        QTimer.singleShot(1500, options_page)
        plugin.show_options()  # modal: options_page() looks at it and closes it
    except Exception:
        result["error"] = traceback.format_exc()
    finish()


QTimer.singleShot(0, walk)
'''


def test_zip_installs_into_a_clean_profile_and_loads_in_qgis(repo_root: Path, tmp_path: Path, flanders,
                                                              backend_python: str) -> None:
    if shutil.which("qgis") is None or shutil.which("xvfb-run") is None:
        pytest.fail("qgis and xvfb-run are needed (scripts/setup.sh installs them)")
    build = subprocess.run([sys.executable, str(repo_root / "scripts" / "build_plugin.py"), "--out",
                            str(tmp_path / "dist")], capture_output=True, text=True, check=True)
    (zip_path,) = (tmp_path / "dist").glob("eo_ssl-*.zip")
    assert str(zip_path) in build.stdout
    with zipfile.ZipFile(zip_path) as zf:
        names = zf.namelist()
        assert all(n.startswith("eo_ssl/") for n in names)
        for must in ("eo_ssl/__init__.py", "eo_ssl/metadata.txt", "eo_ssl/resources/icons/eo_ssl.svg",
                     "eo_ssl/backend/__main__.py", "eo_ssl/backend/cli.py", "eo_ssl/algorithms/base.py",
                     "eo_ssl/resources/models/predict_and_label.model3", "eo_ssl/requirements.txt",
                     "eo_ssl/requirements.lock", "eo_ssl/constraints.txt", "eo_ssl/i18n/eo_ssl.ts",
                     "eo_ssl/resources/icons/eo_ssl_label.svg"):
            assert must in names, must
        assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or "/tests/" in n]
        assert not [n for n in names if "/sample/" in n]
        profiles = tmp_path / "profiles path"
        plugins = profiles / "profiles" / "default" / "python" / "plugins"
        plugins.mkdir(parents=True)
        zf.extractall(plugins)
    ini = profiles / "profiles" / "default" / "QGIS" / "QGIS3.ini"
    ini.parent.mkdir(parents=True)
    ini.write_text("[PythonPlugins]\neo_ssl=true\nprocessing=true\n\n[qgis]\nshowTips=false\n"
                   "checkVersion=false\n")
    script = tmp_path / "startup.py"
    script.write_text(textwrap.dedent(STARTUP))
    marker = tmp_path / "marker.json"
    # a clean machine: no EO_SSL_PYTHON, nothing in the profile; the backend Python only reaches the script, which
    # gives it to the first-run panel as a user would
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "PYTHONPATH", "EO_SSL_PYTHON",
                                                             "EO_SSL_NO_FIRST_RUN")}
    env.update(EO_SSL_TEST_MARKER=str(marker), EO_SSL_TEST_OUT=str(tmp_path / "prepared in qgis"),
               EO_SSL_TEST_S2=str(flanders["s2"][0]), EO_SSL_TEST_BACKEND=backend_python)
    try:
        proc = subprocess.run(["xvfb-run", "-a", "qgis", "--nologo", "--noversioncheck", "--profiles-path",
                               str(profiles), "--code", str(script)],
                              env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"QGIS did not exit within 300 s: {exc.stderr[-2000:] if exc.stderr else ''}")
    assert marker.is_file(), f"exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    result = json.loads(marker.read_text())
    print(json.dumps(result, indent=1))
    assert "error" not in result, result["error"]
    assert result["active"] and "eo_ssl" in result["plugins"]
    assert result["provider"] and "eo_ssl:prepare" in result["algorithms"]
    assert len(result["algorithms"]) == 10  # 9 algorithms + the example model
    installed = plugins / "eo_ssl"
    assert result["plugin_dir"].startswith(str(installed))
    # the first-run panel: the commands of the managed environment, from the installed plugin's own files
    assert result["panel"] is True and result["create_enabled"] is True
    lines = result["commands"].splitlines()
    venv = profiles / "profiles" / "default" / "eo_ssl" / "venv"
    assert str(venv) in lines[0] and "-m venv" in lines[0]
    for name in ("constraints.txt", "requirements.lock"):
        assert str(installed / name) in lines[-1] or shlex.quote(str(installed / name)) in lines[-1]
    assert result["ready"] is True, result["existing_status"]
    assert result["prepared"] is True
    assert result["options_page"] is True
    # the backend that ran is the copy inside the installed plugin
    assert result["backend_argv0"].startswith(str(installed / "backend"))
    assert result["dialog"] is True and result["toolbar"] == ["EoSslDialogAction", "EoSslLabelToolAction",
                                                           "EoSslSimilarAction"]
    assert proc.returncode == 0, proc.stderr[-2000:]
