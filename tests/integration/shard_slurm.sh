#!/usr/bin/env bash
# data-prep/fashion-mnist.sh --slurm 4 on a throw-away local Slurm
# (slurm/testing/local-slurm.sh): per split, a 4-task array of
# slurm/shard.sbatch and a merge job chained with --dependency=afterok. The
# manifests must be byte-identical to a one-process build. Skipped (exit 0
# with a note) where Slurm's daemons or root are not available.
set -euo pipefail
if [[ $(id -u) != 0 ]] || ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  echo "SKIP: needs root, slurmctld, slurmd and munged"
  exit 0
fi
test_name=shard_slurm
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
work=$tmp
fail() {  # lib.sh's, with the jobs' own logs
  echo "$test_name: FAIL: $*" >&2
  for f in "$work"/slurm/*/slurm-*.out; do echo "== $f" >&2; cat "$f" >&2; done
  exit 1
}
start_local_slurm 1

out=$(bash "$src/data-prep/fashion-mnist.sh" --slurm 4 "$work/slurm")
echo "$out"
merge_jobs=$(grep -cE '^[0-9]+$' <<<"$out" || true)
[[ $merge_jobs == 2 ]] || fail "expected two merge job ids on stdout, got: $out"
start=$SECONDS
wait_idle 300
echo "all shard jobs finished after ~$((SECONDS - start)) s"

bash "$src/data-prep/fashion-mnist.sh" "$work/one"
for split in train test; do
  [[ -f $work/slurm/$split/manifest.json ]] || fail "$split: the merge job wrote no manifest"
  cmp "$work/one/$split/manifest.json" "$work/slurm/$split/manifest.json" || fail "$split manifests differ"
  "$bin/ctmq-shard" --check "$work/slurm/$split/manifest.json"
done
echo "PASS: Slurm array + afterok merge gives the one-process manifests byte for byte"
