#!/usr/bin/env bash
# Set up (idempotent), then run the whole test suite headless and the linter. Exits non-zero on any failure,
# including a pytest run that collected no test (exit code 5). Extra arguments go to pytest, e.g.
#   bash scripts/test.sh tests/plugin -k runner
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh || { echo "test: set-up failed" >&2; exit 1; }

export QT_QPA_PLATFORM=offscreen
export PYTHONDONTWRITEBYTECODE=1

echo "test: pytest"
.venv/bin/python -m pytest -q -ra --durations=15 "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
    echo "test: pytest collected no test: that is a failure" >&2
fi

echo "test: ruff check ."
.venv/bin/ruff check --output-format=concise .
lint=$?

if [ "$rc" -ne 0 ] || [ "$lint" -ne 0 ]; then
    echo "test: FAILED (pytest exit $rc, ruff exit $lint)" >&2
    exit 1
fi
echo "test: all passed"
