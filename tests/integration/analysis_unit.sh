#!/usr/bin/env bash
# Unit tests of analysis/ (Python unittest modules tests/analysis/*_test.py).
# Exits non-zero when a test fails; prints unittest's summary.
set -euo pipefail
src=${CTMQ_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
# Debian's Python has torch-free matplotlib/numpy; the first python3 on PATH may not.
python=${CTMQ_PYTHON:-/usr/bin/python3}
export MPLBACKEND=Agg
MPLCONFIGDIR=$(mktemp -d)
export MPLCONFIGDIR
trap 'rm -rf "$MPLCONFIGDIR"' EXIT
cd "$src/tests/analysis"
"$python" -m unittest discover -s . -p '*_test.py' "$@"
