#!/usr/bin/env bash
# Set up (idempotent), then run the end-to-end demo on the shipped real sample (resources/sample/).
# Arguments go to the demo: bash scripts/demo.sh --help
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
exec .venv/bin/python -m backend.demo "$@"
