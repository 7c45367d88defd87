#!/usr/bin/env bash
# Bad input through real Slurm (issue 10, reliability): a run directory, a
# config, a site file and shards whose paths hold spaces and single and double
# quotes, submitted with slurm/submit.sh to a Slurm started on this machine
# (slurm/testing/local-slurm.sh, as in slurm_chain.sh): a 2-stage chain
# (c0-fp, c1-w1a1; 256 Fashion-MNIST images, width 4, launcher srun) must end
# with both stages DONE, evaluated, and their logs where the run directory
# says. Needs root and Debian's slurm/munge packages; fails loudly without them.
# About 1 minute on 2 cores. Env: CTMQ_BIN_DIR, CTMQ_SOURCE_DIR.
set -euo pipefail
root=${CTMQ_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
export CTMQ_BIN_DIR=${CTMQ_BIN_DIR:-$root/build}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fail() { echo "bad_input_slurm: FAIL: $*" >&2; exit 1; }
[[ $(id -u) == 0 ]] || fail "must run as root (the local Slurm runs its daemons as root)"
for tool in munged slurmctld slurmd sbatch squeue scancel; do
  command -v "$tool" >/dev/null || fail "$tool not found; run pipeline/install-deps.sh"
done
# shellcheck source=slurm/testing/local-slurm.sh disable=SC1091
source "$root/slurm/testing/local-slurm.sh"
tmp=$(mktemp -d /tmp/ctmq-bad-slurm-XXXXXX)
chmod 755 "$tmp"
cleanup() {
  scancel -u root 2>/dev/null || true
  local_slurm_stop
  rm -rf "$tmp"
}
trap cleanup EXIT
local_slurm_start "$tmp/slurm" || fail "local Slurm did not start"

weird="$tmp/dir with spaces, 'single' and \"double\" quotes"
mkdir -p "$weird"
bash "$root/data-prep/fashion-mnist.sh" "$weird/shards of mine" >"$tmp/shard.log" 2>&1 ||
  { cat "$tmp/shard.log"; fail "sharding into a path with spaces and quotes"; }
sed -e 's/^LAUNCHER=.*/LAUNCHER="srun"/' -e 's/^CPUS_PER_TASK=.*/CPUS_PER_TASK=1/' \
  -e 's/^TIME_TRAIN=.*/TIME_TRAIN="00:10:00"/' -e 's/^TIME_EVAL=.*/TIME_EVAL="00:05:00"/' \
  "$root/slurm/site.conf" >"$weird/site 'a'.conf"
cat >"$weird/my run.ini" <<INI
[plan]
k-start = 1
k-target = 1
cycles = 1
epochs-pretrain = 1
epochs-step = 1
baselines = false
[data]
train-manifest = $weird/shards of mine/train/manifest.json
test-manifest = $weird/shards of mine/test/manifest.json
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
run="$weird/run \"x\" 'y' z"
start=$SECONDS
bash "$root/slurm/submit.sh" "$weird/my run.ini" "$run" --site "$weird/site 'a'.conf" >"$tmp/submit.out" 2>&1 ||
  { cat "$tmp/submit.out"; fail "submit.sh with spaces and quotes in the paths"; }
grep -q "submitted 2 training stages" "$tmp/submit.out" || { cat "$tmp/submit.out"; fail "submit.sh did not submit 2 stages"; }
for ((i = 0; i < 300; ++i)); do
  [[ -z $(squeue -h -o %i) ]] && break
  sleep 1
done
[[ -z $(squeue -h -o %i) ]] || { squeue >&2; fail "jobs still queued after 300 s"; }
echo "   jobs finished after $((SECONDS - start)) s"
for s in c0-fp c1-w1a1; do
  [[ -f $run/stages/$s/DONE ]] || { tail -n 20 "$run/logs/$s".*.log >&2 || true; fail "stage $s not DONE"; }
  python3 -c 'import json,sys; e=json.load(open(sys.argv[1])); assert e["samples"] == 300 and e["stage"] == sys.argv[2], e' \
    "$run/stages/$s/eval.json" "$s" || fail "eval.json of $s"
  grep -q "ctmq-train job" "$run/logs/$s.train.log" || fail "no Slurm train log for $s in the odd run directory"
done
[[ $(find "$weird" -mindepth 1 -maxdepth 1 | wc -l) == 4 ]] ||  # shards, site, config, run
  fail "files appeared next to the run directory: $(ls "$weird")"
echo "bad_input_slurm: PASS (2 stages DONE and evaluated in '$(basename "$run")')"
