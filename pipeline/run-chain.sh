#!/usr/bin/env bash
# The local runner: runs every stage of a chain on this machine, in plan order.
#
# Usage: pipeline/run-chain.sh RUN.ini RUN_DIR [--ranks R] [--from STAGE]
#                              [--set SECTION.KEY=VALUE]... [--seeds S1,S2,...]
#   RUN.ini       the chain's configuration ([plan] [model] [train] [data] [eval])
#   RUN_DIR       the run directory (created; RUN.ini with every --set is written
#                 to RUN_DIR/config.ini, resolved: sections in order, keys sorted,
#                 comments dropped; a later command must resolve to the same values)
#   --set S.K=V   override key K of section [S] of RUN.ini (repeatable), e.g.
#                 --set train.seed=2 --set plan.cycles=2
#   --seeds LIST  one chain per seed, one after another, in RUN_DIR/seed-S/ with
#                 --set train.seed=S (same data); stops at the first that fails
#   --ranks R     train and evaluate with `mpirun -n R --bind-to none` (default 1)
#   --from STAGE  retrain STAGE and every later stage: their directories are moved
#                 to RUN_DIR/replaced/TIME/ (never deleted), then the chain resumes;
#                 earlier stages are not run, and the stage each retrained stage
#                 starts from must be DONE (ctmq-status --stages-to-train decides,
#                 as for slurm/submit.sh; docs/pipeline.md)
#
# Resumable: stages that are DONE are skipped (and evaluated when eval.json is
# missing); a stage stopped mid-way continues from its newest checkpoint. The
# first failure stops the chain with the stage and its log named. Logs go to
# RUN_DIR/logs/STAGE.{train,eval}.log. Every line starts with the local time;
# after each stage it runs, the time left (the wall time per epoch of the
# stages run so far x the epochs still to train). Ends with a table of every
# stage's top-1.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/common.sh
source "$here/common.sh"
ctmq_exit_on_help "$@"
(($# >= 2)) || { ctmq_usage >&2; exit 2; }
config=$1 run=$2
shift 2
args=("$@") seeds=''
ranks=1 from=''
while (($#)); do
  case $1 in
    --ranks) ranks=${2:?--ranks needs a value}; shift 2 ;;
    --from) from=${2:?--from needs a stage name}; shift 2 ;;
    --set) CTMQ_SETS+=(--set "${2:?--set needs SECTION.KEY=VALUE}"); shift 2 ;;
    --seeds) seeds=${2:?--seeds needs a list, e.g. 1,2,3}; shift 2 ;;
    *) ctmq_die "unknown argument '$1'; see $0 --help" ;;
  esac
done
[[ $ranks =~ ^[1-9][0-9]*$ ]] || ctmq_die "--ranks must be a positive integer, got '$ranks'"
[[ -f $config ]] || ctmq_die "config $config does not exist"
ctmq_find_bin
if [[ -n $seeds ]]; then
  ctmq_run_seeds "$0" "$seeds" "$config" "$run" "${args[@]}"
  exit 0
fi

# Everything is checked before anything runs or changes.
ctmq_load_plan_for_run "$config" "$run" "run again with"
ctmq_stages_to_train "$config" "$run" "$from"  # TRAIN_IT; checks --from
from_index=${#PLAN_NAME[@]}
[[ -z $from ]] || from_index=$(ctmq_stage_index "$from")

mkdir -p "$run/logs"
ctmq_write_run_config "$config" "$run"
"$CTMQ_BIN/ctmq-plan" --config "$run/config.ini" --run-dir "$run" >/dev/null
for ((i = from_index; i < ${#PLAN_NAME[@]}; ++i)); do
  ctmq_archive_stage "$run" "${PLAN_NAME[$i]}"
done

stage_args=(--ranks "$ranks")
start=$SECONDS
# The estimate of time left: wall seconds and epochs of the stages trained (and
# evaluated) by this command; each stage weighs by its epochs.
timed_s=0 timed_epochs=0 timed_stages=0 not_run=0
# time_left I: logs the estimate for the stages after I that are not DONE.
time_left() {
  local j left_epochs=0 left_stages=0 left_s
  for ((j = $1 + 1; j < ${#PLAN_NAME[@]}; ++j)); do
    ((TRAIN_IT[j])) || continue
    left_stages=$((left_stages + 1)) left_epochs=$((left_epochs + PLAN_EPOCHS[j]))
  done
  ((left_stages > 0 && timed_stages > 0)) || return 0
  if ((timed_epochs > 0)); then
    left_s=$((timed_s * left_epochs / timed_epochs))
    ctmq_log "run-chain: about $(ctmq_duration "$left_s") left: $left_stages stage(s), $left_epochs epoch(s) to train at $(ctmq_duration $((timed_s / timed_epochs))) per epoch so far"
  else
    left_s=$((timed_s * left_stages / timed_stages))
    ctmq_log "run-chain: about $(ctmq_duration "$left_s") left: $left_stages stage(s) at $(ctmq_duration $((timed_s / timed_stages))) per stage so far"
  fi
}
for i in "${!PLAN_NAME[@]}"; do
  stage=${PLAN_NAME[$i]}
  label=$(printf 'stage %d of %d  %-18s' "$((i + 1))" "${#PLAN_NAME[@]}" "$stage")
  t0=$SECONDS trained=0
  if ((!TRAIN_IT[i])) && [[ ! -f $run/stages/$stage/DONE ]]; then
    ctmq_log "$label not DONE, not run: it is before --from $from"
    not_run=$((not_run + 1))
    continue
  fi
  if [[ -f $run/stages/$stage/DONE ]]; then
    if [[ -f $run/stages/$stage/eval.json ]]; then
      ctmq_log "$label DONE, skipped (top-1 $(ctmq_top1 "$run/stages/$stage/eval.json") %)"
      continue
    fi
  else
    log=$run/logs/$stage.train.log
    ctmq_log "$label training: W${PLAN_W[$i]}A${PLAN_A[$i]}, ${PLAN_EPOCHS[$i]} epochs, init ${PLAN_INIT[$i]} (log: $log)"
    trained=1
    set +e
    bash "$here/run-stage.sh" train "$run" "$stage" "${stage_args[@]}" >>"$log" 2>&1
    rc=$?
    set -e
    if ((rc == 75)); then
      ctmq_log "run-chain: stage $stage was preempted after a checkpoint; run the same command again to continue" >&2
      exit 75
    elif ((rc != 0)); then
      ctmq_log "run-chain: stage $stage failed in training (exit $rc); see $log:" >&2
      tail -n 5 "$log" | sed 's/^/  | /' >&2
      exit 1
    fi
    [[ -f $run/stages/$stage/DONE ]] ||
      ctmq_die "stage $stage: ctmq-train exited 0 but wrote no DONE; see $log"
    ctmq_log "$label trained in $(ctmq_duration $((SECONDS - t0)))"
  fi
  log=$run/logs/$stage.eval.log
  if ! bash "$here/run-stage.sh" eval "$run" "$stage" "${stage_args[@]}" >>"$log" 2>&1; then
    ctmq_log "run-chain: stage $stage failed in evaluation; see $log:" >&2
    tail -n 5 "$log" | sed 's/^/  | /' >&2
    exit 1
  fi
  ctmq_log "$label evaluated: top-1 $(ctmq_top1 "$run/stages/$stage/eval.json") %"
  if ((trained)); then
    timed_s=$((timed_s + SECONDS - t0)) timed_epochs=$((timed_epochs + PLAN_EPOCHS[i]))
    timed_stages=$((timed_stages + 1))
  fi
  time_left "$i"
done
if ((not_run)); then
  ctmq_log "run-chain: $from and every later stage of $run are DONE; $not_run earlier stage(s) are not ($(ctmq_duration $((SECONDS - start))))"
else
  ctmq_log "run-chain: all ${#PLAN_NAME[@]} stages of $run are DONE ($(ctmq_duration $((SECONDS - start))))"
fi
bash "$here/summarize.sh" "$run"
