#!/usr/bin/env bash
# The local runner: runs every stage of a chain on this machine, in plan order.
#
# Usage: pipeline/run-chain.sh RUN.ini RUN_DIR [--ranks R] [--from STAGE]
#   RUN.ini       the chain's configuration ([plan] [model] [train] [data] [eval])
#   RUN_DIR       the run directory (created; RUN.ini is copied to RUN_DIR/config.ini)
#   --ranks R     train and evaluate with `mpirun -n R --bind-to none` (default 1)
#   --from STAGE  retrain STAGE and every later stage: their directories are moved
#                 to RUN_DIR/replaced/TIME/ (never deleted), then the chain resumes
#
# Resumable: stages that are DONE are skipped (and evaluated when eval.json is
# missing); a stage stopped mid-way continues from its newest checkpoint. The
# first failure stops the chain with the stage and its log named. Logs go to
# RUN_DIR/logs/STAGE.{train,eval}.log. Ends with a table of every stage's top-1.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/common.sh
source "$here/common.sh"
ctmq_exit_on_help "$@"
(($# >= 2)) || { ctmq_usage >&2; exit 2; }
config=$1 run=$2
shift 2
ranks=1 from=''
while (($#)); do
  case $1 in
    --ranks) ranks=${2:?--ranks needs a value}; shift 2 ;;
    --from) from=${2:?--from needs a stage name}; shift 2 ;;
    *) ctmq_die "unknown argument '$1'; see $0 --help" ;;
  esac
done
[[ $ranks =~ ^[1-9][0-9]*$ ]] || ctmq_die "--ranks must be a positive integer, got '$ranks'"
[[ -f $config ]] || ctmq_die "config $config does not exist"
ctmq_find_bin

# Everything is checked before anything runs or changes.
ctmq_load_plan_for_run "$config" "$run" "run again with"
from_index=${#PLAN_NAME[@]}
if [[ -n $from ]]; then
  from_index=$(ctmq_stage_index "$from") ||
    ctmq_die "--from $from: no such stage in the plan of $config; stages: ${PLAN_NAME[*]}"
  for ((i = 0; i < from_index; ++i)); do
    [[ -f $run/stages/${PLAN_NAME[$i]}/DONE ]] ||
      ctmq_die "--from $from: earlier stage ${PLAN_NAME[$i]} is not DONE; run the chain without --from first"
  done
fi

mkdir -p "$run/logs"
[[ -f $run/config.ini ]] || cp "$config" "$run/config.ini"
"$CTMQ_BIN/ctmq-plan" --config "$run/config.ini" --run-dir "$run" >/dev/null
for ((i = from_index; i < ${#PLAN_NAME[@]}; ++i)); do
  ctmq_archive_stage "$run" "${PLAN_NAME[$i]}"
done

stage_args=(--ranks "$ranks")
start=$SECONDS
for i in "${!PLAN_NAME[@]}"; do
  stage=${PLAN_NAME[$i]}
  label=$(printf '[%d/%d] %-18s' "$((i + 1))" "${#PLAN_NAME[@]}" "$stage")
  if [[ -f $run/stages/$stage/DONE ]]; then
    if [[ -f $run/stages/$stage/eval.json ]]; then
      echo "$label DONE, skipped (top-1 $(ctmq_top1 "$run/stages/$stage/eval.json") %)"
      continue
    fi
  else
    log=$run/logs/$stage.train.log
    echo "$label training: W${PLAN_W[$i]}A${PLAN_A[$i]}, ${PLAN_EPOCHS[$i]} epochs, init ${PLAN_INIT[$i]} (log: $log)"
    t0=$SECONDS
    set +e
    bash "$here/run-stage.sh" train "$run" "$stage" "${stage_args[@]}" >>"$log" 2>&1
    rc=$?
    set -e
    if ((rc == 75)); then
      echo "run-chain: stage $stage was preempted after a checkpoint; run the same command again to continue" >&2
      exit 75
    elif ((rc != 0)); then
      echo "run-chain: stage $stage failed in training (exit $rc); see $log:" >&2
      tail -n 5 "$log" | sed 's/^/  | /' >&2
      exit 1
    fi
    [[ -f $run/stages/$stage/DONE ]] ||
      ctmq_die "stage $stage: ctmq-train exited 0 but wrote no DONE; see $log"
    echo "$label trained in $((SECONDS - t0)) s"
  fi
  log=$run/logs/$stage.eval.log
  if ! bash "$here/run-stage.sh" eval "$run" "$stage" "${stage_args[@]}" >>"$log" 2>&1; then
    echo "run-chain: stage $stage failed in evaluation; see $log:" >&2
    tail -n 5 "$log" | sed 's/^/  | /' >&2
    exit 1
  fi
  echo "$label evaluated: top-1 $(ctmq_top1 "$run/stages/$stage/eval.json") %"
done
echo "run-chain: all ${#PLAN_NAME[@]} stages of $run are DONE ($((SECONDS - start)) s)"
bash "$here/summarize.sh" "$run"
