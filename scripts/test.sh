#!/usr/bin/env bash
# The test command of the README: starts a throwaway PostgreSQL (when it can), then runs
# `nox -s tests` (every distribution installed editable, torch CPU, pytest), then lint,
# the third-party example plugin and every subset of distributions (editable and wheels).
# Extra arguments go to pytest, e.g. `bash scripts/test.sh tests/core -x`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ -z "${ATO_TEST_POSTGRES_URL:-}" ]; then
  # shellcheck source=scripts/postgres.sh
  source scripts/postgres.sh
fi
if [ ! -x .venv-tools/bin/nox ]; then
  "$PY" -m venv .venv-tools
  .venv-tools/bin/pip install -q --disable-pip-version-check "nox>=2024.3.2"
fi
.venv-tools/bin/nox -s tests lint plugin_example subsets -- "$@"
