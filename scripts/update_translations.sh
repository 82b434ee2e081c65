#!/usr/bin/env bash
# Regenerate the translation template qgis_plugin/i18n/eo_ssl.ts from the plugin's tr() and QT_TRANSLATE_NOOP strings
# (pylupdate5, from Debian's pyqt5-dev-tools; scripts/setup.sh installs it). A translator copies the template to
# eo_ssl_<locale>.ts, translates it (Qt Linguist) and compiles it next to it with `lrelease` (eo_ssl_<locale>.qm): the
# plugin loads it for QGIS's interface locale. tests/plugin/test_i18n.py fails when the template misses a string.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mapfile -t files < <(find qgis_plugin -name '*.py' -not -path '*/__pycache__/*' | sort)
mkdir -p qgis_plugin/i18n
PYTHONWARNINGS=ignore pylupdate5 -noobsolete "${files[@]}" -ts qgis_plugin/i18n/eo_ssl.ts
