#!/usr/bin/env bash
# Helpers shared by the integration scripts (sourced, not run; not a test:
# tests/CMakeLists.txt skips it). A script sets its name, then sources this:
#
#   set -euo pipefail
#   test_name=train_cli
#   # shellcheck source=tests/integration/lib.sh
#   source "$(dirname "$0")/lib.sh"
#
# Sourcing it sets:
#   src      the source tree (CTMQ_SOURCE_DIR, else two levels above this file)
#   bin      the build directory (CTMQ_BIN_DIR, else $src/build), exported as
#            CTMQ_BIN_DIR for the pipeline scripts the tests run
#   tmp      a fresh directory under ${TMPDIR:-/tmp}, removed on exit
# and exports what Open MPI needs to run as root in a container. Functions:
#   fail MESSAGE...             "NAME: FAIL: MESSAGE" on stderr, exit 1
#   on_exit COMMAND             runs COMMAND on exit, before $tmp is removed
#                               (later registrations run first)
#   require_bins EXE...         fails unless each $bin/EXE is built
#   shard_fashion_mnist DIR     data-prep/fashion-mnist.sh DIR, its log shown
#                               only on failure
#   expect_error WHAT PATTERN CMD...
#                               CMD must exit non-zero with PATTERN in stderr
#   json_field FILE KEY         prints the top-level KEY of a JSON file
#   start_local_slurm           needs root and the Slurm/munge daemons; starts
#                               slurm/testing/local-slurm.sh under $tmp/local-slurm,
#                               cancels the jobs and stops it on exit
#   wait_idle SECONDS           waits until Slurm has no job queued or running
#   write_two_stage_config FILE SHARDS  a 2-stage chain config (see below)
: "${test_name:?set test_name before sourcing tests/integration/lib.sh}"
src=${CTMQ_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
bin=${CTMQ_BIN_DIR:-$src/build}
export CTMQ_BIN_DIR=$bin
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

fail() { echo "$test_name: FAIL: $*" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ctmq-$test_name-XXXXXX")
exit_commands=()
on_exit() { exit_commands=("$1" "${exit_commands[@]}"); }
run_exit_commands() {
  local command
  for command in "${exit_commands[@]}"; do eval "$command" || true; done
  rm -rf "$tmp"
}
trap run_exit_commands EXIT

require_bins() {
  local exe
  for exe in "$@"; do
    [[ -x $bin/$exe ]] || fail "$bin/$exe not built (set CTMQ_BIN_DIR to the build directory)"
  done
}

shard_fashion_mnist() {
  bash "$src/data-prep/fashion-mnist.sh" "$1" >"$tmp/shard.log" 2>&1 ||
    { cat "$tmp/shard.log" >&2; fail "sharding Fashion-MNIST into $1"; }
}

expect_error() {
  local what=$1 pattern=$2
  shift 2
  if "$@" >"$tmp/out.txt" 2>"$tmp/err.txt"; then fail "$what: exit 0"; fi
  grep -q -- "$pattern" "$tmp/err.txt" || { cat "$tmp/err.txt" >&2; fail "$what: no '$pattern'"; }
  echo "ok: $what -> $(grep -m1 error "$tmp/err.txt")"
}

json_field() {
  /usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"
}

start_local_slurm() {
  [[ $(id -u) == 0 ]] || fail "must run as root (the local Slurm runs its daemons as root)"
  local tool
  for tool in munged slurmctld slurmd sbatch squeue scancel; do
    command -v "$tool" >/dev/null || fail "$tool not found; run pipeline/install-deps.sh"
  done
  # shellcheck source=slurm/testing/local-slurm.sh
  source "$src/slurm/testing/local-slurm.sh"
  chmod 755 "$tmp"
  on_exit 'scancel -u root 2>/dev/null; local_slurm_stop'
  local_slurm_start "$tmp/local-slurm" || fail "local Slurm did not start"
}

wait_idle() {
  local i
  for ((i = 0; i < $1; ++i)); do
    [[ -z $(squeue -h -o %i) ]] && return 0
    sleep 1
  done
  squeue >&2
  fail "jobs still queued after $1 s"
}

# write_two_stage_config FILE SHARDS: the config of a 2-stage chain (c0-fp,
# then c1-w1a1; no baselines) on the first 256 training and 300 test images of
# the Fashion-MNIST shards in SHARDS, width 4, one thread.
write_two_stage_config() {
  cat >"$1" <<INI
[plan]
k-start = 1
k-target = 1
cycles = 1
epochs-pretrain = 1
epochs-step = 1
baselines = false
[data]
train-manifest = $2/train/manifest.json
test-manifest = $2/test/manifest.json
train-limit = 256
test-limit = 300
[model]
width = 4
[train]
batch = 64
threads = 1
seed = 5
[eval]
batch = 100
threads = 1
INI
}
