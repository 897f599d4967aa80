#!/usr/bin/env bash
# The demo of the README: a small real training job configured with Scope and CLI
# overrides, searched with HyperBand, tracked in SQLite (demo.db), summarised by `ato runs`.
# Extra arguments are Ato command-line arguments, e.g. `bash scripts/demo.sh wide train.epochs=30`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import ato.hyperopt, ato.ui, sklearn" 2>/dev/null; then
  "$PY" -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -e ./ato-core -e ./ato-formats \
    -e ./ato-sql -e ./ato-hyperopt -e ./ato-mmlab -e ./ato-ui numpy scikit-learn
fi
rm -rf demo.db demo.db-wal demo.db-shm demo.ato-store   # the database and its model store
run() { echo; echo "\$ python examples/demo/train.py $*"; .venv/bin/python examples/demo/train.py "$@"; }
run manual                                        # what can be configured, in applying order
run manual --why train.lr wide train.lr=0.05      # every write behind one value
run "${@:-wide}"                                  # the job: search, train, track, report
echo
echo "Open these runs in the dashboard (runs, live charts, compare, the HyperBand ladder, models):"
echo "  .venv/bin/ato ui sqlite:///demo.db --open"
