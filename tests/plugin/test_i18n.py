"""Translations: the plugin's user strings go through tr() (or QT_TRANSLATE_NOOP for constants), and the shipped
template qgis_plugin/i18n/eo_ssl.ts holds every one of them (scripts/update_translations.sh regenerates it)."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

#: Calls whose string arguments a user reads (Qt widgets and setters, Processing feedback and errors).
TEXT_CALLS = {"QLabel", "QPushButton", "QCheckBox", "QRadioButton", "QGroupBox", "QAction", "setText", "setToolTip",
              "setStatusTip", "setWindowTitle", "setPlaceholderText", "addTab", "addRow", "setSpecialValueText",
              "pushInfo", "pushWarning", "reportError", "setInformativeText", "critical", "warning", "question",
              "information", "QgsProcessingException", "createMessage", "appendPlainText"}
#: Literals that are not words for people: names, markup, format strings, numbers.
NOT_TEXT = re.compile(r"^(eo-ssl|%p%.*|[^A-Za-z]*|<[^>]*>.*\{\}.*|\{[a-z_]*\}.*)$")


def _strings(node: ast.AST) -> list[str]:
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def _untranslated(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
        name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
        if name not in TEXT_CALLS:
            continue
        for arg in call.args:
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and not NOT_TEXT.match(arg.value):
                found.append(f"{path.name}:{call.lineno}: {arg.value[:60]!r}")
            if isinstance(arg, ast.JoinedStr):  # an f-string with words in it cannot be translated
                words = re.sub(r"<[^>]*>", "", "".join(_strings(arg)))
                if re.search(r"[A-Za-z]{3,}", words):
                    found.append(f"{path.name}:{call.lineno}: f-string {words[:50]!r}")
    return found


def test_user_strings_go_through_tr(repo_root: Path) -> None:
    plugin = repo_root / "qgis_plugin"
    problems = [p for path in sorted(plugin.rglob("*.py")) for p in _untranslated(path)]
    assert not problems, "user strings without tr():\n" + "\n".join(problems)


def _sources(ts: Path) -> set[tuple[str, str]]:
    root = ET.parse(ts).getroot()
    return {(ctx.findtext("name"), msg.findtext("source")) for ctx in root.iter("context")
            for msg in ctx.iter("message")}


def test_the_template_holds_every_string(repo_root: Path, tmp_path: Path) -> None:
    if shutil.which("pylupdate5") is None:
        pytest.fail("pylupdate5 is missing (Debian's pyqt5-dev-tools; scripts/setup.sh installs it)")
    shipped = repo_root / "qgis_plugin" / "i18n" / "eo_ssl.ts"
    assert shipped.is_file()
    fresh = tmp_path / "fresh.ts"
    files = sorted(str(p) for p in (repo_root / "qgis_plugin").rglob("*.py") if "__pycache__" not in p.parts)
    subprocess.run(["pylupdate5", "-noobsolete", *files, "-ts", str(fresh)], check=True, capture_output=True)
    want, have = _sources(fresh), _sources(shipped)
    assert want == have, ("qgis_plugin/i18n/eo_ssl.ts is stale: run scripts/update_translations.sh\n"
                          f"missing: {sorted(want - have)[:10]}\nextra: {sorted(have - want)[:10]}")
    # one context, the one tr() looks strings up in
    from qgis_plugin.i18n import CONTEXT

    assert {ctx for ctx, _ in have} == {CONTEXT}
    texts = {text for _, text in have}
    for must in ("Set up the backend…", "Create the backend environment", "Use an existing Python", "Copy log",
                 "Cache folder", "Label with clicks", "2 Pre-train (self-supervised)"):
        assert must in texts, must
