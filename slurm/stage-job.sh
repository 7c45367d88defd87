# Sourced by train.sbatch and eval.sbatch: runs one stage's program in the
# background, forwards USR1/TERM to it, and owns the requeue decision when
# the program stops early with exit 75 (preempted, docs/training.md):
#   - after USR1 (--signal=B:USR1@SIGNAL_SECONDS: the time limit is near, or
#     `scancel --signal=USR1 --batch`), the job requeues itself with
#     `scontrol requeue` when site REQUEUE=true (the default) and it has been
#     requeued fewer than MAX_REQUEUES times (SLURM_RESTART_COUNT);
#   - after TERM alone (scancel, or preemption: with PreemptMode=REQUEUE Slurm
#     requeues the job itself, since submit.sh passes --requeue), never: a
#     cancelled job stays cancelled. (TERM after USR1 is the time limit
#     arriving during the checkpoint: USR1 decides.)
# Nothing else requeues a ctmq job (ctmq-train does not).
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
  # The traps fire while `wait` below waits; they read and set these globals.
  ctmq_stage_child=$child ctmq_stage_signal=''
  trap 'ctmq_stage_signal=USR1; ctmq_log "$what.sbatch: received USR1; asking stage $stage to stop"; kill -s USR1 "$ctmq_stage_child" 2>/dev/null || true' USR1
  trap 'ctmq_stage_signal=${ctmq_stage_signal:-TERM}; ctmq_log "$what.sbatch: received TERM; asking stage $stage to stop"; kill -s TERM "$ctmq_stage_child" 2>/dev/null || true' TERM
  local rc=0
  while true; do
    wait "$child"
    rc=$?
    kill -0 "$child" 2>/dev/null || break
  done
  ctmq_log "stage $stage ($what) exited $rc"
  ((rc == 75)) || return "$rc"
  local restarts=${SLURM_RESTART_COUNT:-0} cap=${MAX_REQUEUES:-10}
  if [[ $ctmq_stage_signal == TERM ]]; then
    ctmq_log "stage $stage ($what) stopped by TERM (scancel or preemption); not requeued by ctmq; resubmit with slurm/submit.sh to continue" >&2
  elif [[ ${REQUEUE:-true} != true ]]; then
    ctmq_log "stage $stage ($what) preempted; REQUEUE=false in the site file; resubmit with slurm/submit.sh to continue" >&2
  elif ((restarts >= cap)); then
    ctmq_log "stage $stage ($what) preempted; job $SLURM_JOB_ID was already requeued $restarts times (MAX_REQUEUES=$cap); resubmit with slurm/submit.sh to continue" >&2
  else
    ctmq_log "stage $stage ($what) preempted; requeueing job $SLURM_JOB_ID (requeue $((restarts + 1)) of at most $cap)"
    scontrol requeue "$SLURM_JOB_ID" && return 0
    ctmq_log "scontrol requeue failed; resubmit with slurm/submit.sh to continue" >&2
  fi
  return "$rc"
}
