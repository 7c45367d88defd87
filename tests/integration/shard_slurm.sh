#!/usr/bin/env bash
# data-prep/fashion-mnist.sh --slurm 4 on a throw-away local Slurm
# (slurm/testing/local-slurm.sh): per split, a 4-task array of
# slurm/shard.sbatch and a merge job chained with --dependency=afterok. The
# manifests must be byte-identical to a one-process build. Skipped (exit 0
# with a note) where Slurm's daemons or root are not available.
set -euo pipefail
bin=${CTMQ_BIN_DIR:?set CTMQ_BIN_DIR to the build directory}
src=${CTMQ_SOURCE_DIR:?set CTMQ_SOURCE_DIR to the source tree}
export CTMQ_BIN_DIR=$bin
if [[ $(id -u) != 0 ]] || ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  echo "SKIP: needs root, slurmctld, slurmd and munged"
  exit 0
fi
work=$(mktemp -d)
source "$src/slurm/testing/local-slurm.sh"
trap 'local_slurm_stop; rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; for f in "$work"/slurm/*/slurm-*.out; do echo "== $f" >&2; cat "$f" >&2; done; exit 1; }
local_slurm_start "$work/cluster"

out=$(bash "$src/data-prep/fashion-mnist.sh" --slurm 4 "$work/slurm")
echo "$out"
merge_jobs=$(grep -cE '^[0-9]+$' <<<"$out" || true)
[[ $merge_jobs == 2 ]] || fail "expected two merge job ids on stdout, got: $out"
for ((i = 0; i < 300; ++i)); do
  [[ -z $(squeue -h -o %i) ]] && break
  sleep 1
done
if [[ -z $(squeue -h -o %i) ]]; then
  echo "all shard jobs finished after ~${i} s"
else
  fail "jobs still queued after 300 s"
fi

bash "$src/data-prep/fashion-mnist.sh" "$work/one"
for split in train test; do
  [[ -f $work/slurm/$split/manifest.json ]] || fail "$split: the merge job wrote no manifest"
  cmp "$work/one/$split/manifest.json" "$work/slurm/$split/manifest.json" || fail "$split manifests differ"
  "$bin/ctmq-shard" --check "$work/slurm/$split/manifest.json"
done
echo "PASS: Slurm array + afterok merge gives the one-process manifests byte for byte"
