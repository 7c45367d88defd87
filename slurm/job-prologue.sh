# shellcheck shell=bash
# The one prologue of every ctmq Slurm job and of slurm/submit.sh (sourced,
# not run): the site file, its modules, and the job's first log line.
#
#   source "$CTMQ_ROOT_DIR/slurm/job-prologue.sh"
#   ctmq_job_prologue SITE_CONF "ctmq-train job ... stage S"   # in a job
#   ctmq_load_site SITE_CONF                                 # in submit.sh
#
# A job script runs from Slurm's spool copy, so it finds this file through
# CTMQ_ROOT_DIR, which submit.sh and data-prep/common.sh export (sbatch passes
# the submitter's environment to the job).

# ctmq_log, ctmq_die: log lines stamped with the local time, as everywhere.
# shellcheck source=pipeline/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../pipeline/common.sh"

# ctmq_load_site FILE: the site settings (slurm/site.conf's variables) into
# the caller's shell; FILE must exist and name a known LAUNCHER.
ctmq_load_site() {
  [[ -f $1 ]] || ctmq_die "site settings $1 do not exist; copy slurm/site.conf and pass --site"
  # shellcheck source=slurm/site.conf
  source "$1"
  [[ ${LAUNCHER:-} == srun || ${LAUNCHER:-} == mpirun ]] ||
    ctmq_die "$1: LAUNCHER must be srun or mpirun, found '${LAUNCHER:-}'"
}

# ctmq_job_prologue SITE_CONF MESSAGE: loads SITE_CONF (none when empty) and
# its MODULES, then logs "TIME MESSAGE on HOST" to the job's output. Sets
# CTMQ_LAUNCH to run-stage.sh's launcher flags from the site (LAUNCHER,
# SRUN_MPI, SRUN_OPTIONS or MPIRUN_OPTIONS) and exports SRUN_CPUS_PER_TASK:
# since Slurm 22.05 srun no longer inherits the job's --cpus-per-task, so
# without it every rank would be bound to one CPU.
ctmq_job_prologue() {
  [[ -z $1 ]] || ctmq_load_site "$1"
  local m
  for m in ${MODULES:-}; do module load "$m"; done
  if [[ -n ${SLURM_CPUS_PER_TASK:-} ]]; then export SRUN_CPUS_PER_TASK=$SLURM_CPUS_PER_TASK; fi
  CTMQ_LAUNCH=(--launcher "${LAUNCHER:-srun}")
  if [[ ${LAUNCHER:-srun} == srun ]]; then
    # An older site file without SRUN_MPI keeps the old --mpi=pmix.
    CTMQ_LAUNCH+=(--mpi "${SRUN_MPI-pmix}" --launcher-options "${SRUN_OPTIONS:-}")
  else
    CTMQ_LAUNCH+=(--launcher-options "${MPIRUN_OPTIONS:-}")
  fi
  ctmq_log "$2 on $(hostname)"
}
