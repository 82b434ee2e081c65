#!/usr/bin/env bash
# Set up (idempotent), then run the whole test suite headless and the linter. Exits non-zero on any failure,
# including a pytest run that collected no test (exit code 5). Extra arguments go to pytest, e.g.
#   bash scripts/test.sh tests/plugin -k runner
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh || { echo "test: set-up failed" >&2; exit 1; }

export QT_QPA_PLATFORM=offscreen
export PYTHONDONTWRITEBYTECODE=1

# pytest-xdist workers, one per core up to 4 (two on the CI machine); --dist loadfile sends each test file to one
# worker, so a module's fixtures are built once. The tests train with one torch thread each.
# EO_SSL_TEST_WORKERS=N sets the number; 0 runs them in this process (a debugger, -x on the first failure in order).
workers="${EO_SSL_TEST_WORKERS:-$(n="$(nproc 2>/dev/null || echo 2)"; echo $(( n < 4 ? n : 4 )))}"
echo "test: pytest ($workers workers)"
if [ "$workers" -gt 0 ]; then
    .venv/bin/python -m pytest -q -ra --durations=15 -n "$workers" --dist loadfile "$@"
else
    .venv/bin/python -m pytest -q -ra --durations=15 "$@"
fi
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
