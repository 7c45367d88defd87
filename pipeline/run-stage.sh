#!/usr/bin/env bash
# Runs one stage of a run directory: its training (ctmq-train) or its
# evaluation (ctmq-eval), with the bit depths, epochs and init of RUN/plan.tsv
# and the options of RUN/config.ini. Used by the local runner (run-chain.sh)
# and by the Slurm templates (slurm/*.sbatch), so both run the same commands.
#
# Usage: pipeline/run-stage.sh train|eval RUN_DIR STAGE [--ranks R]
#                              [--launcher none|mpirun|srun] [--mpi TYPE]
#                              [--launcher-options "OPTS"] [-- EXTRA ARGS]
#   --ranks R      MPI ranks (default 1; under Slurm the allocation's tasks)
#   --launcher L   none (R must be 1), mpirun (mpirun -n R --bind-to none),
#                  srun (srun --mpi=TYPE --kill-on-bad-exit=1, inside an
#                  allocation); default:
#                  none for 1 rank, else mpirun
#   --mpi TYPE     srun's PMI type (default pmix; "" leaves out --mpi, so the
#                  cluster's MpiDefault applies)
#   --launcher-options "OPTS"  more srun or mpirun options, split at spaces
#                  (the Slurm templates pass site.conf's SRUN_OPTIONS or
#                  MPIRUN_OPTIONS)
# Every variable named in CTMQ_EXPORT_ENV (space-separated names; the Slurm
# jobs set it from the site file's EXPORT_ENV) reaches every rank: mpirun gets
# -x NAME for each, srun passes the whole environment.
# The launcher replaces this script (exec), so signals sent to this process
# (Slurm's USR1, TERM) reach mpirun/srun, which pass them to every rank.
# Exit status: ctmq-train's or ctmq-eval's (0 done, 75 preempted, else failed).
set -euo pipefail
# A preemption signal before the program starts is remembered and answered
# with 75 (nothing has run, rerun to continue); from exec on the program's
# launcher holds it (src/launcher/signal_launcher.c).
preempted_by=''
trap 'preempted_by=USR1' USR1
trap 'preempted_by=TERM' TERM
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "$0")/common.sh"
ctmq_exit_on_help "$@"
(($# >= 3)) || { ctmq_usage >&2; exit 2; }
what=$1 run=$2 stage=$3
shift 3
ranks=1 launcher='' mpi=pmix launcher_options=''
while (($#)); do
  case $1 in
    --ranks) ranks=$2; shift 2 ;;
    --launcher) launcher=$2; shift 2 ;;
    --mpi) mpi=$2; shift 2 ;;
    --launcher-options) launcher_options=$2; shift 2 ;;
    --) shift; break ;;
    *) ctmq_die "unknown argument '$1'; see $0 --help" ;;
  esac
done
[[ $ranks =~ ^[1-9][0-9]*$ ]] || ctmq_die "--ranks must be a positive integer, got '$ranks'"
[[ -z $launcher ]] && launcher=$([[ $ranks == 1 ]] && echo none || echo mpirun)
read -ra extra <<<"$launcher_options"  # split at spaces, as the site file writes them
ctmq_find_bin
[[ -f $run/plan.tsv && -f $run/config.ini ]] ||
  ctmq_die "$run has no plan.tsv/config.ini; start the chain with pipeline/run-chain.sh or slurm/submit.sh"
ctmq_read_plan "$run/plan.tsv"
ctmq_stage_index "$stage" >/dev/null || ctmq_die "stage '$stage' is not in $run/plan.tsv (stages: ${PLAN_NAME[*]})"

case $what in
  train)
    # ctmq-train reads the stage's bit depths, epochs and init from
    # RUN/plan.tsv itself (the one path of the stage facts; docs/run-directory.md).
    cmd=("$CTMQ_BIN/ctmq-train" --config "$run/config.ini" --run-dir "$run" --stage "$stage" "$@") ;;
  eval)
    cmd=("$CTMQ_BIN/ctmq-eval" --config "$run/config.ini" --run-dir "$run" --stage "$stage" "$@") ;;
  *) ctmq_die "first argument must be train or eval, got '$what'" ;;
esac

if [[ -n $preempted_by ]]; then
  ctmq_log "run-stage.sh: $what of stage $stage preempted by $preempted_by before it started; rerun to continue" >&2
  exit 75
fi
case $launcher in
  none)
    ((ranks == 1)) || ctmq_die "--launcher none runs 1 rank; use mpirun or srun for $ranks"
    exec "${cmd[@]}" ;;
  mpirun)
    forward=()
    for name in ${CTMQ_EXPORT_ENV:-}; do forward+=(-x "$name"); done
    exec mpirun -n "$ranks" --bind-to none "${forward[@]}" "${extra[@]}" "${cmd[@]}" ;;
  srun)
    mpi_flag=()
    [[ -n $mpi ]] && mpi_flag=(--mpi="$mpi")
    # A rank that fails ends the step (mpirun does so by itself): the others
    # would otherwise wait for it until their collective timeout.
    exec srun "${mpi_flag[@]}" --kill-on-bad-exit=1 "${extra[@]}" -n "$ranks" "${cmd[@]}" ;;
  *) ctmq_die "--launcher must be none, mpirun or srun, got '$launcher'" ;;
esac
