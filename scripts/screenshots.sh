#!/usr/bin/env bash
# Refresh the README's pictures in a real QGIS window: build the plugin zip, install it into a clean QGIS profile
# (no backend anywhere), and run scripts/qgis_screenshots.py in `qgis` under Xvfb. It walks a new user's way (first-run
# panel, settings, diagnostics, the dialog on the Flanders sample, the example model, the labelling tool, Find similar
# on an embedding), writes docs/img/{first_run,settings,diagnostics,dialog,model_designer,parcel_labelling}.png and
# docs/screenshots/find_similar.png, and fails if a stage did not work (it prints what the walk saw). 10-20 minutes on
# 2 busy CPU cores (the dialog trains on the CPU).
#
#   bash scripts/screenshots.sh                 the whole walk
#   bash scripts/screenshots.sh find_similar    Find similar alone (about two minutes; the backend Python is set in
#                                               the profile instead of the first-run panel)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
PY="${EO_SSL_PYTHON:-$ROOT/.venv/bin/python}"
STAGES="${1:-all}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 scripts/build_plugin.py --out "$work/dist" >/dev/null
profiles="$work/profiles"
mkdir -p "$profiles/profiles/default/python/plugins" "$profiles/profiles/default/QGIS"
(cd "$profiles/profiles/default/python/plugins" && python3 -m zipfile -e "$work"/dist/eo_ssl-*.zip .)
printf '[PythonPlugins]\neo_ssl=true\nprocessing=true\n\n[qgis]\nshowTips=false\ncheckVersion=false\n' \
    >"$profiles/profiles/default/QGIS/QGIS3.ini"
if [[ "$STAGES" != all ]]; then  # no first-run panel in this walk: the backend is the given Python
    printf '\n[eo_ssl]\nbackend_python=%s\nsetup_offered=1\n' "$PY" >>"$profiles/profiles/default/QGIS/QGIS3.ini"
fi
# a copy of the sample: QGIS writes .aux.xml statistics next to the rasters it shows; the repository stays as it is
sample="$work/sample"
mkdir -p "$sample/s2" "$sample/s1"
src="$ROOT/resources/sample/worldcereal_flanders_2018"
cp "$src/s2/S2_20170824.tif" "$src/s2/S2_20170827.tif" "$sample/s2/"
cp "$src/s1/S1_20170807.tif" "$sample/s1/"
cp "$src/parcels.gpkg" "$sample/"
# the feature raster of Find similar: `eo-ssl embed` of the two Sentinel-2 dates (16 principal components) by a
# seeded random resnet18 package (the tests' random_encoder_package: a fixed model, no training)
"$PY" -m backend prepare --s2 "$sample/s2" --out "$work/store" >"$work/embed.log" 2>&1
"$PY" - "$work/store" "$work/encoder" <<'PY' >>"$work/embed.log" 2>&1
import sys
from pathlib import Path

from tests.backend.test_pixel_classifier import random_encoder_package

random_encoder_package(Path(sys.argv[1]), Path(sys.argv[2]))
PY
"$PY" -m backend embed --model "$work/encoder" --s2 "$sample/s2" --dim 16 --devices cpu \
    --out "$sample/embedding.tif" >>"$work/embed.log" 2>&1 || { tail -n 20 "$work/embed.log" >&2; exit 1; }
shots="$ROOT/docs/img"
mkdir -p "$shots"
env -u EO_SSL_PYTHON -u PYTHONPATH -u QT_QPA_PLATFORM \
    EO_SSL_SHOTS="$shots" EO_SSL_SIMILAR_SHOTS="$ROOT/docs/screenshots" EO_SSL_STAGES="$STAGES" \
    EO_SSL_WALK="$work/walk.json" EO_SSL_SAMPLE="$sample" EO_SSL_WORK="$work" \
    EO_SSL_BACKEND="$PY" EO_SSL_REPO="$ROOT" EO_SSL_SCRATCH="${EO_SSL_SCRATCH:-}" \
    timeout 3600 xvfb-run -a -s "-screen 0 1600x1000x24" \
    qgis --nologo --noversioncheck --profiles-path "$profiles" --code "$ROOT/scripts/qgis_screenshots.py" \
    >"$work/qgis.log" 2>&1 || { tail -n 40 "$work/qgis.log" >&2; exit 1; }
python3 - "$work/walk.json" "$STAGES" <<'PY'
import json, sys
walk, stages = json.load(open(sys.argv[1])), sys.argv[2]
print(json.dumps({k: v for k, v in walk.items() if k != "dialog_log"}, indent=1))
if "error" in walk:
    sys.exit("the walk failed:\n" + walk["error"])
similar = ("similar_tool_active", "similar_layer", "similar_styled")
checks = similar if stages == "find_similar" else (
    "panel_opened", "plan", "backend_ready", "options_page", "options_check", "diagnostics", "job_finished",
    "log_at_end", "labelled_layer", "canvas_focus_on_activation", *similar)
failed = [k for k in checks if walk.get(k) is not True]
failed += [] if walk.get("similar_at_click") is not None and abs(walk["similar_at_click"] - 1) < 1e-3 else [
    "similar_at_click"]
if stages != "find_similar":
    failed += [] if walk.get("job", [False])[0] else ["job"]
    failed += [] if all(walk.get("model_valid", [False])) else ["model_valid"]
    failed += [] if walk.get("selected_after_label") == [] else ["selected_after_label"]
if failed:
    sys.exit("stages that did not work: " + ", ".join(failed) + "\n" + "\n".join(walk.get("dialog_log", [])[-20:]))
PY
