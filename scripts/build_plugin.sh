#!/usr/bin/env bash
# Build the installable QGIS plugin zip (dist/eo_ssl-<version>.zip); see scripts/build_plugin.py for its layout.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec python3 scripts/build_plugin.py "$@"
