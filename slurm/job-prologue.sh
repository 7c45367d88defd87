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

# ctmq_load_site FILE: the site settings (slurm/site.conf's variables) into
# the caller's shell; FILE must exist and name a known LAUNCHER.
ctmq_load_site() {
  [[ -f $1 ]] || { echo "$(basename "$0"): error: site settings $1 do not exist; copy slurm/site.conf and pass --site" >&2; exit 1; }
  # shellcheck source=slurm/site.conf
  source "$1"
  [[ ${LAUNCHER:-} == srun || ${LAUNCHER:-} == mpirun ]] ||
    { echo "$(basename "$0"): error: $1: LAUNCHER must be srun or mpirun, found '${LAUNCHER:-}'" >&2; exit 1; }
}

# ctmq_job_prologue SITE_CONF MESSAGE: loads SITE_CONF (none when empty) and
# its MODULES, then logs "MESSAGE on HOST at TIME" to the job's output.
ctmq_job_prologue() {
  [[ -z $1 ]] || ctmq_load_site "$1"
  local m
  for m in ${MODULES:-}; do module load "$m"; done
  echo "$2 on $(hostname) at $(date -u +%FT%TZ)"
}
