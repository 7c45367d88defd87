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
#   start_local_slurm [NODES [GPUS]]  needs root and the Slurm/munge daemons;
#                               starts slurm/testing/local-slurm.sh under
#                               $tmp/local-slurm (NODES simulated nodes with GPUS
#                               fake GPUs each; default 1 node, this host),
#                               cancels the jobs and stops it on exit
#   same_tensors A B            true when network files A and B hold the same
#                               tensors and pickles, bit for bit
#   wait_idle SECONDS           waits until Slurm has no job queued or running
#   write_run_ini FILE SHARDS [SECTION.KEY=VALUE...]
#                               the small run's config with changes (see below)
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

start_local_slurm() {  # start_local_slurm [NODES [GPUS]]: see slurm/testing/local-slurm.sh
  [[ $(id -u) == 0 ]] || fail "must run as root (the local Slurm runs its daemons as root)"
  local tool
  for tool in munged slurmctld slurmd sbatch squeue scancel; do
    command -v "$tool" >/dev/null || fail "$tool not found; run pipeline/install-deps.sh"
  done
  # shellcheck source=slurm/testing/local-slurm.sh
  source "$src/slurm/testing/local-slurm.sh"
  chmod 755 "$tmp"
  on_exit 'scancel -u root 2>/dev/null; local_slurm_stop'
  local_slurm_start "$tmp/local-slurm" "${1:-1}" "${2:-0}" || fail "local Slurm did not start"
}

# The zip entries of the two files compared, less the entry prefix (the
# temporary file name, which differs from run to run).
same_tensors() {
  /usr/bin/python3 - "$1" "$2" <<'PY'
import sys, zipfile
def entries(path):
    with zipfile.ZipFile(path) as z:
        return {n.split("/", 1)[1]: z.read(n) for n in z.namelist()}
a, b = entries(sys.argv[1]), entries(sys.argv[2])
bad = sorted(n for n in set(a) | set(b) if a.get(n) != b.get(n))
if bad:
    print("differing entries:", " ".join(bad[:10]), file=sys.stderr)
    sys.exit(1)
if not any(n.startswith("data/") for n in a):
    print("no tensor data in", sys.argv[1], file=sys.stderr)
    sys.exit(1)
PY
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

# write_run_ini FILE SHARDS [SECTION.KEY=VALUE...]: writes the config the CLI
# tests start from, a small run on the Fashion-MNIST shards in SHARDS
# (shard_fashion_mnist):
#   [data]  train-manifest = SHARDS/train/manifest.json
#           test-manifest = SHARDS/test/manifest.json
#   [model] arch = small-resnet, width = 4
#   [train] batch = 32, threads = 1, seed = 5
#   [eval]  batch = 100, threads = 1
# with each SECTION.KEY set to VALUE (in its place, else added at the end of
# its section, a new section at the end of the file) or, where VALUE is empty,
# removed (a section left without keys is left out).
write_run_ini() {
  local file=$1 shards=$2
  shift 2
  /usr/bin/python3 - "$file" "$shards" "$@" <<'PY' || fail "write_run_ini $*"
import sys

file, shards, *changes = sys.argv[1:]
sections = {
    "data": {"train-manifest": f"{shards}/train/manifest.json",
             "test-manifest": f"{shards}/test/manifest.json"},
    "model": {"arch": "small-resnet", "width": "4"},
    "train": {"batch": "32", "threads": "1", "seed": "5"},
    "eval": {"batch": "100", "threads": "1"},
}
for change in changes:
    name, equals, value = change.partition("=")
    section, dot, key = name.partition(".")
    if not equals or not dot or not section or not key:
        sys.exit(f"expected SECTION.KEY=VALUE, found '{change}'")
    keys = sections.setdefault(section, {})
    if value:
        keys[key] = value
    else:
        keys.pop(key, None)
with open(file, "w") as out:
    for section, keys in sections.items():
        if keys:
            out.write(f"[{section}]\n")
            out.writelines(f"{key} = {value}\n" for key, value in keys.items())
PY
}

# write_two_stage_config FILE SHARDS: the config of a 2-stage chain (c0-fp,
# then c1-w1a1; no baselines) on the first 256 training and 300 test images of
# the Fashion-MNIST shards in SHARDS, width 4, batch 64, one thread.
write_two_stage_config() {
  write_run_ini "$1" "$2" data.train-limit=256 data.test-limit=300 model.arch= train.batch=64 \
    plan.k-start=1 plan.k-target=1 plan.cycles=1 plan.epochs-pretrain=1 plan.epochs-step=1 \
    plan.baselines=false
}
