# shellcheck shell=bash
# The one path by which ctmq submits Slurm jobs (sourced, not run): stage jobs
# (slurm/submit.sh) and sharding arrays with their merge (data-prep/*.sh
# --slurm) get the same site flags from the site file.
#
#   source "$CTMQ_ROOT_DIR/slurm/sbatch.sh"
#   ctmq_load_site SITE_CONF        # slurm/job-prologue.sh
#   ctmq_sbatch_init [DRY]          # DRY=1: print the command lines instead
#   ctmq_sbatch FLAGS... SCRIPT ARGS...   # sets JOB_ID (JOBn when dry)
#   flag=$(ctmq_array_flag N)       # --array=0-(N-1)[%ARRAY_THROTTLE]
#
# Every job gets --kill-on-invalid-dep=yes (a job whose dependency failed is
# removed, not left pending forever), --open-mode=append (a requeued job adds
# to its log), and the site's PARTITION, ACCOUNT, QOS and EXTRA_SBATCH; the
# caller adds the job's shape, --time, --output and --dependency. The site's
# MODULES are loaded inside each job by its prologue (slurm/job-prologue.sh).

# shellcheck source=SCRIPTDIR/job-prologue.sh
source "$(dirname "${BASH_SOURCE[0]}")/job-prologue.sh"

ctmq_sbatch_init() {
  CTMQ_SBATCH_DRY=${1:-0} CTMQ_SBATCH_PLACEHOLDER=${CTMQ_SBATCH_PLACEHOLDER:-0}
  CTMQ_SBATCH_SITE=(--kill-on-invalid-dep=yes --open-mode=append)
  [[ -n ${PARTITION:-} ]] && CTMQ_SBATCH_SITE+=(--partition="$PARTITION")
  [[ -n ${ACCOUNT:-} ]] && CTMQ_SBATCH_SITE+=(--account="$ACCOUNT")
  [[ -n ${QOS:-} ]] && CTMQ_SBATCH_SITE+=(--qos="$QOS")
  # shellcheck disable=SC2206  # EXTRA_SBATCH is a list of flags, split at spaces
  [[ -n ${EXTRA_SBATCH:-} ]] && CTMQ_SBATCH_SITE+=($EXTRA_SBATCH)
  return 0
}

ctmq_sbatch() {
  if ((CTMQ_SBATCH_DRY)); then
    CTMQ_SBATCH_PLACEHOLDER=$((CTMQ_SBATCH_PLACEHOLDER + 1))
    printf 'sbatch'
    printf ' %q' "${CTMQ_SBATCH_SITE[@]}" "$@"
    printf '\n'
    JOB_ID="JOB$CTMQ_SBATCH_PLACEHOLDER"
    return 0
  fi
  JOB_ID=$(sbatch --parsable "${CTMQ_SBATCH_SITE[@]}" "$@") || ctmq_die "sbatch failed for: $*"
  JOB_ID=${JOB_ID%%;*}
}

# ctmq_array_flag N: the --array flag of an N-task array, throttled by the
# site's ARRAY_THROTTLE; dies when N is not a positive count or when the
# cluster's MaxArraySize (scontrol show config) does not allow index N-1.
ctmq_array_flag() {
  local n=$1 max
  [[ $n =~ ^[1-9][0-9]*$ ]] || ctmq_die "an array needs a positive task count, got '$n'"
  max=$(scontrol show config 2>/dev/null | awk '$1 == "MaxArraySize" { print $3 }')
  if [[ $max =~ ^[0-9]+$ ]] && ((n > max)); then
    ctmq_die "an array of $n tasks needs indices up to $((n - 1)), but this cluster's MaxArraySize is $max (indices below $max); use at most $max tasks (SHARD_TASKS in the site file, or --slurm N)"
  fi
  local flag="--array=0-$((n - 1))"
  if [[ -n ${ARRAY_THROTTLE:-} ]]; then
    [[ $ARRAY_THROTTLE =~ ^[1-9][0-9]*$ ]] ||
      ctmq_die "site ARRAY_THROTTLE must be a positive count or empty, found '$ARRAY_THROTTLE'"
    flag+="%$ARRAY_THROTTLE"
  fi
  echo "$flag"
}
