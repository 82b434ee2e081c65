#!/usr/bin/env bash
# Idempotent set-up of a fresh Debian bookworm machine for eo-ssl (non-interactive, works as root):
#   1. Debian packages: QGIS + PyQGIS (the plugin side and its tests), python3-venv, Xvfb/xauth, pyqt5-dev-tools
#      (pylupdate5: the plugin's translation template, scripts/update_translations.sh, checked by the tests).
#      Installed only when `dpkg` says one is missing.
#   2. .venv: created with --system-site-packages from /usr/bin/python3 so that it sees PyQGIS.
#   3. The pinned Python dependencies (requirements.lock, under constraints.txt); skipped when the stamp in .venv
#      records the same sha256 of requirements.lock + constraints.txt.
#   4. eo-ssl itself, editable (`eo-ssl` console script), with --no-deps.
# It exports nothing GDAL/PROJ related: the wheels (rasterio, pyproj) and Debian's QGIS each find their own data.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
APT_PACKAGES=(qgis python3-qgis python3-venv xvfb xauth pyqt5-dev-tools)
export DEBIAN_FRONTEND=noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK=1

say() { printf 'setup: %s\n' "$*"; }
t0=$SECONDS

# One set-up at a time per checkout (demo.sh and test.sh may start together).
if command -v flock >/dev/null 2>&1; then
    lock_file="${TMPDIR:-/tmp}/eo-ssl-setup-$(printf '%s' "$ROOT" | sha256sum | cut -c1-12).lock"
    exec 9>"$lock_file"
    flock 9
fi

# --- 1. Debian packages -----------------------------------------------------------------------------------------
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$pkg")
    fi
done
if ((${#missing[@]})); then
    SUDO=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            SUDO=(sudo -n)
        else
            say "missing Debian packages: ${missing[*]}; run this script as root (or install them) and retry" >&2
            exit 1
        fi
    fi
    say "installing Debian packages: ${missing[*]} (first time: a few minutes)"
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    say "Debian packages present (${APT_PACKAGES[*]})"
fi

# --- 2. the virtual environment ---------------------------------------------------------------------------------
if [ -x "$PY" ] && ! grep -qi '^include-system-site-packages *= *true' "$VENV/pyvenv.cfg" 2>/dev/null; then
    say ".venv exists without --system-site-packages (it would not see PyQGIS): recreating it"
    rm -rf "$VENV"
fi
if [ ! -x "$PY" ]; then
    say "creating .venv (with --system-site-packages, from /usr/bin/python3)"
    /usr/bin/python3 -m venv --system-site-packages "$VENV"
fi

# --- 3. pinned dependencies -------------------------------------------------------------------------------------
stamp="$VENV/.eo-ssl-deps.sha256"
want="$(cat requirements.lock constraints.txt | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    say "dependencies up to date (requirements.lock unchanged)"
else
    n="$(grep -c '==' requirements.lock)"
    say "installing $n pinned packages from requirements.lock (first time: several minutes, ~6 GB with torch's CUDA libraries)"
    rm -f "$stamp"
    log="$VENV/pip-install.log"
    if ! "$PY" -m pip install --progress-bar off -c constraints.txt -r requirements.lock >"$log" 2>&1; then
        grep -v 'is ignored: it is neither a file nor a directory' "$log" | tail -n 40 >&2
        say "pip install failed; the whole log is in $log" >&2
        exit 1
    fi
    printf '%s\n' "$want" >"$stamp"
fi

# --- 4. eo-ssl itself (editable) --------------------------------------------------------------------------------
pstamp="$VENV/.eo-ssl-project.sha256"
pwant="$(sha256sum <pyproject.toml | cut -d' ' -f1)"
if [ -x "$VENV/bin/eo-ssl" ] && [ -f "$pstamp" ] && [ "$(cat "$pstamp")" = "$pwant" ]; then
    say "eo-ssl installed (editable)"
else
    say "installing eo-ssl (editable, --no-deps)"
    log="$VENV/pip-install-project.log"
    if ! "$PY" -m pip install --no-deps --no-build-isolation -e . >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        say "pip install -e . failed; the whole log is in $log" >&2
        exit 1
    fi
    printf '%s\n' "$pwant" >"$pstamp"
fi

# --- check ------------------------------------------------------------------------------------------------------
"$PY" - <<'EOF'
import importlib.util

import torch

qgis = "missing"
if importlib.util.find_spec("qgis") is not None:
    from qgis.core import Qgis

    qgis = Qgis.QGIS_VERSION
device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
print(f"setup: torch {torch.__version__} ({device}), QGIS {qgis}")
EOF
say "ready in $((SECONDS - t0)) s: .venv/bin/python"
