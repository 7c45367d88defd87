# shellcheck shell=bash
# Shared by the data-prep recipes (sourced, not run).
# shellcheck source=pipeline/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../pipeline/common.sh"  # ctmq_usage, ctmq_exit_on_help
#
# find_ctmq_shard: sets CTMQ_SHARD to the ctmq-shard executable, from
# $CTMQ_BIN_DIR, then PATH, then the repository's build directories.
find_ctmq_shard() {
  local root candidate
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  for candidate in "${CTMQ_BIN_DIR:-}/ctmq-shard" "$(command -v ctmq-shard || true)" \
                   "$root/build/ctmq-shard"; do
    if [[ -n $candidate && -x $candidate ]]; then CTMQ_SHARD=$candidate; return 0; fi
  done
  echo "data-prep: ctmq-shard not found; build it (pipeline/build.sh) or set CTMQ_BIN_DIR" >&2
  return 1
}

# build_split OUT ARRAY SLURM ARGS...: shards one split into OUT.
#   Skips a split whose manifest exists and verifies (idempotent); refuses one
#   whose manifest exists but fails verification (never deletes data).
#   ARRAY=0: one process. ARRAY=N>0: N slices run here one after the other,
#   then the merge (what a Slurm array does, without Slurm).
#   SLURM=N>0: submits slurm/shard.sbatch as an N-task array and a merge job
#   chained with --dependency=afterok, and returns at once.
build_split() {
  local out=$1 array=$2 slurm=$3
  shift 3
  local root
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  if [[ -f $out/manifest.json ]]; then
    if "$CTMQ_SHARD" --check "$out/manifest.json" >/dev/null; then
      echo "data-prep: $out is complete and valid; skipped"
      return 0
    fi
    echo "data-prep: $out/manifest.json exists but does not verify (see above); remove $out and rerun" >&2
    return 1
  fi
  if (( slurm > 0 )); then
    # The one submission path (slurm/sbatch.sh) with the site file's flags:
    # CTMQ_SITE_CONF (set by slurm/submit.sh), else slurm/site.conf.
    export CTMQ_ROOT_DIR=$root  # the jobs' prologue (slurm/job-prologue.sh)
    export CTMQ_SITE_CONF=${CTMQ_SITE_CONF:-$root/slurm/site.conf}
    # shellcheck source=slurm/sbatch.sh
    source "$root/slurm/sbatch.sh"
    ctmq_load_site "$CTMQ_SITE_CONF"
    ctmq_sbatch_init 0
    local array_flag jid
    array_flag=$(ctmq_array_flag "$slurm") || return 1
    mkdir -p "$out"
    ctmq_sbatch "$array_flag" --time="${TIME_SHARD:-01:00:00}" --output="$out/slurm-%A_%a.out" \
      "$root/slurm/shard.sbatch" "$CTMQ_SHARD" "$@" --output "$out"
    jid=$JOB_ID
    ctmq_sbatch --dependency=afterok:"$jid" --time="${TIME_SHARD:-01:00:00}" \
      --output="$out/slurm-merge-%j.out" \
      "$root/slurm/shard.sbatch" "$CTMQ_SHARD" "$@" --output "$out" --merge --array-count "$slurm"
    echo "$JOB_ID"  # the merge's id alone on a line: what later jobs wait for (slurm/submit.sh)
    echo "data-prep: submitted array job $jid and its merge $JOB_ID for $out"
    return 0
  fi
  if (( array > 0 )); then
    local i
    for ((i = 0; i < array; ++i)); do
      "$CTMQ_SHARD" "$@" --output "$out" --array-index "$i" --array-count "$array"
    done
    "$CTMQ_SHARD" "$@" --output "$out" --merge --array-count "$array"
  else
    "$CTMQ_SHARD" "$@" --output "$out"
  fi
}

# parse_common_flags "$@": sets OUT_DIR, ARRAY, SLURM from
#   [--array-count N] [--slurm N] [OUT_DIR]
# split_recipe_args ARGS...: sets RECIPE_INPUT to the first positional argument
# (the data set's directory) and parses the flags and the optional OUT_DIR
# with parse_common_flags. Returns 2 when no input directory was given.
split_recipe_args() {
  local positional=() flags=()
  while (( $# > 0 )); do
    case $1 in
      --array-count|--slurm) flags+=("$1" "$2"); shift 2 ;;
      *) positional+=("$1"); shift ;;
    esac
  done
  (( ${#positional[@]} >= 1 )) || return 2
  # An output, read by the recipes that source this file.
  # shellcheck disable=SC2034
  RECIPE_INPUT=${positional[0]}
  parse_common_flags "${flags[@]}" "${positional[@]:1}"
}

# start_input_recipe NAME ARGS...: the start of a recipe that reads a data
# set's directory: -h/--help prints the recipe's header and exits 0; a missing
# input prints it on stderr and exits 2; then RECIPE_INPUT, ARRAY, SLURM,
# OUT_DIR (default: shards/NAME under the repository) and CTMQ_SHARD are set.
start_input_recipe() {
  local name=$1
  shift
  ctmq_exit_on_help "$@"
  if ! split_recipe_args "$@"; then ctmq_usage >&2; exit 2; fi
  OUT_DIR=${OUT_DIR:-$CTMQ_ROOT/shards/$name}
  find_ctmq_shard
}

# ARRAY, SLURM and OUT_DIR are outputs, read by the recipes that source this file.
# shellcheck disable=SC2034
parse_common_flags() {
  ARRAY=0
  SLURM=0
  OUT_DIR=
  while (( $# > 0 )); do
    case $1 in
      --array-count) ARRAY=$2; shift 2 ;;
      --slurm) SLURM=$2; shift 2 ;;
      *) OUT_DIR=$1; shift ;;
    esac
  done
}
