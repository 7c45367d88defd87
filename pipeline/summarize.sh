#!/usr/bin/env bash
# Prints a table of every stage of a run directory in plan order: bits, epochs,
# init, status and test top-1 / top-5 / loss from eval.json; under a stage, its
# what-if evaluations at other bit depths (ctmq-eval --w-bits/--a-bits,
# eval-wKaK.json: the same weights, no training).
# Usage: pipeline/summarize.sh RUN_DIR
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "$0")/common.sh"
ctmq_exit_on_help "$@"
run=${1:?usage: summarize.sh RUN_DIR}
[[ -f $run/plan.tsv ]] || ctmq_die "$run/plan.tsv not found; is $run a run directory?"
python3 "$CTMQ_ROOT/analysis/stage_status.py" table "$run"
