"""The installable zip: built by scripts/build_plugin.py, unpacked into a clean QGIS profile, and loaded by the real
``qgis`` binary under Xvfb. The startup script checks that the plugin is loaded and its provider registered, runs
one real ``prepare`` through Processing with the backend copy inside the installed plugin, opens the dialog, and
writes a marker file; then QGIS exits."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.qgis

STARTUP = r'''
import json, os, traceback
from pathlib import Path
from qgis.core import QgsApplication
from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtWidgets import QApplication
import qgis.utils

MARKER = Path(os.environ["EO_SSL_TEST_MARKER"])
result = {}
try:
    result["plugins"] = sorted(qgis.utils.plugins)
    result["active"] = qgis.utils.isPluginLoaded("eo_ssl")
    plugin = qgis.utils.plugins.get("eo_ssl")
    registry = QgsApplication.processingRegistry()
    provider = registry.providerById("eo_ssl")
    result["provider"] = provider is not None
    result["algorithms"] = sorted(a.id() for a in provider.algorithms()) if provider else []
    result["plugin_dir"] = str(Path(plugin.__class__.__module__ and __import__(plugin.__class__.__module__).__file__))
    import processing
    out = Path(os.environ["EO_SSL_TEST_OUT"])
    res = processing.run("eo_ssl:prepare", {"S2": [os.environ["EO_SSL_TEST_S2"]], "OUTPUT": str(out)})
    result["prepared"] = (Path(res["OUTPUT"]) / "manifest.json").is_file()
    manifest = json.loads((Path(res["OUTPUT"]) / "manifest.json").read_text())
    result["backend_argv0"] = manifest["provenance"]["command"][0]
    plugin.show_dialog()
    result["dialog"] = plugin.dialog is not None and plugin.dialog.isVisible()
    result["toolbar"] = [a.objectName() for a in plugin.actions]
    plugin.dialog.close()
except Exception:
    result["error"] = traceback.format_exc()
MARKER.write_text(json.dumps(result))
QTimer.singleShot(0, lambda: QApplication.instance().exit(0))
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
                     "eo_ssl/resources/models/predict_and_label.model3", "eo_ssl/requirements.txt"):
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
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "PYTHONPATH")}
    env.update(EO_SSL_TEST_MARKER=str(marker), EO_SSL_TEST_OUT=str(tmp_path / "prepared in qgis"),
               EO_SSL_TEST_S2=str(flanders["s2"][0]), EO_SSL_PYTHON=backend_python)
    try:
        proc = subprocess.run(["xvfb-run", "-a", "qgis", "--nologo", "--noversioncheck", "--profiles-path",
                               str(profiles), "--code", str(script)],
                              env=env, capture_output=True, text=True, timeout=150, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"QGIS did not exit within 150 s: {exc.stderr[-2000:] if exc.stderr else ''}")
    assert marker.is_file(), f"exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    result = json.loads(marker.read_text())
    print(json.dumps(result, indent=1))
    assert "error" not in result, result["error"]
    assert result["active"] and "eo_ssl" in result["plugins"]
    assert result["provider"] and "eo_ssl:prepare" in result["algorithms"] and len(result["algorithms"]) == 8
    installed = plugins / "eo_ssl"
    assert result["plugin_dir"].startswith(str(installed))
    assert result["prepared"] is True
    # the backend that ran is the copy inside the installed plugin
    assert result["backend_argv0"].startswith(str(installed / "backend"))
    assert result["dialog"] is True and result["toolbar"] == ["EoSslDialogAction", "EoSslLabelToolAction"]
    assert proc.returncode == 0, proc.stderr[-2000:]
