#!/usr/bin/env bash
# README's main command. On a fresh Debian machine: installs the packages
# (pipeline/install-deps.sh, needs root), builds the programs against Debian's
# LibTorch 1.13 (pipeline/build.sh; no tests or benchmarks), shards
# Fashion-MNIST (data-prep/fashion-mnist.sh), then runs the quick chain
# (pipeline/configs/fashion-mnist-quick.ini: 2 cycles of 2 -> 1 bits and both
# baselines, about 10 minutes on 2 cores), prints every stage's accuracy, and
# runs the last W1A1 result as a packed binary model (ctmq-export, ctmq-infer).
#
# Usage: bash pipeline/quickstart.sh [--ranks R]
#   RUN_DIR (env) the run directory, default runs/fashion-mnist-quick
#   Rerunning continues where it stopped: finished steps are skipped.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=SCRIPTDIR/common.sh
source pipeline/common.sh
ctmq_exit_on_help "$@"
echo "== 1/4 packages"
bash pipeline/install-deps.sh
echo "== 2/4 build"
bash pipeline/build.sh
export CTMQ_BIN_DIR=${BUILD_DIR:-$root/build}
echo "== 3/4 Fashion-MNIST shards"
bash data-prep/fashion-mnist.sh
echo "== 4/4 the CTMQ chain"
run=${RUN_DIR:-runs/fashion-mnist-quick}
bash pipeline/run-chain.sh pipeline/configs/fashion-mnist-quick.ini "$run" "$@"
# Continuity of the one graph: c0-fp's weights at the first step's bit depths,
# BatchNorm re-estimated, no training (shown under c0-fp in the table below).
ctmq_read_plan "$run/plan.tsv"
if [[ ! -f $run/stages/c0-fp/eval-w${PLAN_W[1]}a${PLAN_A[1]}.json ]]; then
  "$CTMQ_BIN_DIR/ctmq-eval" --config "$run/config.ini" --run-dir "$run" --stage c0-fp \
    --w-bits "${PLAN_W[1]}" --a-bits "${PLAN_A[1]}" >"$run/logs/c0-fp.continuity.log" 2>&1 ||
    { cat "$run/logs/c0-fp.continuity.log" >&2; exit 1; }
fi
echo "== the chain (c0-fp's 'same weights' row: its weights at the first step's depths, no training)"
bash pipeline/summarize.sh "$run"
# The chain's last W1A1 result as a packed binary model, run by the bit-packed
# engine and compared with LibTorch image by image (docs/deploy.md).
result=""
for i in "${!PLAN_NAME[@]}"; do
  [[ ${PLAN_ROLE[$i]} == result && ${PLAN_W[$i]} == 1 && ${PLAN_A[$i]} == 1 ]] && result=${PLAN_NAME[$i]}
done
if [[ -n $result ]]; then
  echo "== $result as a packed binary model (ctmq-export, ctmq-infer)"
  "$CTMQ_BIN_DIR/ctmq-export" --run-dir "$run" --stage "$result" --format packed \
    --output "$run/export/$result.packed"
  # the network eval.json scored (BatchNorm re-estimated), as ctmq-export packed it
  reference=$run/stages/$result/eval-network.pt
  [[ -f $reference ]] || reference=$run/stages/$result/final.pt
  "$CTMQ_BIN_DIR/ctmq-infer" --model "$run/export/$result.packed" \
    --test-manifest shards/fashion-mnist/test/manifest.json \
    --reference "$reference" --output "$run/export/$result.infer.json"
fi
