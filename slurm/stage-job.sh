# Sourced by train.sbatch and eval.sbatch: runs one stage's program in the
# background, forwards USR1/TERM to it, and turns its exit 75 (preempted,
# docs/training.md) into a requeue when site.conf says REQUEUE=true.
#
#   ctmq_stage_job train|eval RUN_DIR STAGE [run-stage.sh arguments...]
#
# Exit status: the program's (0 done, 75 preempted and not requeued, else
# failed); 0 after a successful requeue. Needs CTMQ_ROOT_DIR and
# slurm/job-prologue.sh (ctmq_log).
# shellcheck shell=bash

ctmq_stage_job() {
  local what=$1 run=$2 stage=$3
  shift 3
  bash "$CTMQ_ROOT_DIR/pipeline/run-stage.sh" "$what" "$run" "$stage" "$@" &
  local child=$!
  # The traps fire while `wait` below waits; they read this global.
  ctmq_stage_child=$child
  trap 'ctmq_log "$what.sbatch: received USR1; asking stage $stage to stop"; kill -s USR1 "$ctmq_stage_child" 2>/dev/null || true' USR1
  trap 'ctmq_log "$what.sbatch: received TERM; asking stage $stage to stop"; kill -s TERM "$ctmq_stage_child" 2>/dev/null || true' TERM
  local rc=0
  while true; do
    wait "$child"
    rc=$?
    kill -0 "$child" 2>/dev/null || break
  done
  ctmq_log "stage $stage ($what) exited $rc"
  if ((rc == 75)); then
    if [[ ${REQUEUE:-false} == true ]]; then
      ctmq_log "stage $stage ($what) preempted; requeueing job $SLURM_JOB_ID"
      scontrol requeue "$SLURM_JOB_ID" && return 0
      ctmq_log "scontrol requeue failed; resubmit with slurm/submit.sh to continue" >&2
    else
      ctmq_log "stage $stage ($what) preempted; resubmit with slurm/submit.sh to continue" >&2
    fi
  fi
  return "$rc"
}
