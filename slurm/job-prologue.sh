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
# the caller's shell; FILE must exist, name a known LAUNCHER, and hold only
# NAME or NAME=VALUE entries in EXPORT_ENV.
ctmq_load_site() {
  [[ -f $1 ]] || ctmq_die "site settings $1 do not exist; copy slurm/site.conf and pass --site"
  # shellcheck source=slurm/site.conf
  source "$1"
  [[ ${LAUNCHER:-} == srun || ${LAUNCHER:-} == mpirun ]] ||
    ctmq_die "$1: LAUNCHER must be srun or mpirun, found '${LAUNCHER:-}'"
  local entry
  for entry in ${EXPORT_ENV:-}; do
    [[ $entry =~ ^[A-Za-z_][A-Za-z0-9_]*(=.*)?$ ]] ||
      ctmq_die "$1: EXPORT_ENV entry '$entry' is not NAME or NAME=VALUE (values without spaces)"
  done
}

# ctmq_export_site_env: exports EXPORT_ENV's NAME=VALUE entries, and
# CTMQ_EXPORT_ENV, the names of every entry (run-stage.sh gives each to
# mpirun as -x NAME). A NAME entry that is not set is left out, with a warning.
ctmq_export_site_env() {
  local entry name names=()
  for entry in ${EXPORT_ENV:-}; do
    name=${entry%%=*}
    if [[ $entry == *=* ]]; then
      export "${entry?}"
    elif [[ -z ${!name+set} ]]; then
      ctmq_log "EXPORT_ENV names $name, which is not set in this job; not forwarded" >&2
      continue
    else
      export "${name?}"
    fi
    names+=("$name")
  done
  export CTMQ_EXPORT_ENV="${names[*]}"
}

# ctmq_job_prologue SITE_CONF MESSAGE: loads SITE_CONF (none when empty), its
# MODULES and EXPORT_ENV (ctmq_export_site_env), then logs "TIME MESSAGE on HOST" to the job's output. Sets
# CTMQ_LAUNCH to run-stage.sh's launcher flags from the site (LAUNCHER,
# SRUN_MPI, SRUN_OPTIONS or MPIRUN_OPTIONS) and exports SRUN_CPUS_PER_TASK:
# since Slurm 22.05 srun no longer inherits the job's --cpus-per-task, so
# without it every rank would be bound to one CPU.
ctmq_job_prologue() {
  [[ -z $1 ]] || ctmq_load_site "$1"
  local m
  for m in ${MODULES:-}; do module load "$m"; done
  ctmq_export_site_env
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
