#!/usr/bin/env bash
# Runs pipeline/configs/fashion-mnist-gpu.ini for seeds 1..3 at once on one GPU
# (three independent chains share it) and leaves the run directories in
# $OUT/runs.tgz for analysis/analyze.py. Expects what bench/gpu/setup.sh names
# under .carry/. Usage: bash bench/gpu/results_chain.sh
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 1
# shellcheck source=SCRIPTDIR/setup.sh
source bench/gpu/setup.sh
ctmq_gpu_configure -DCTMQ_BUILD_TESTS=OFF -DCTMQ_BUILD_BENCH=OFF || exit 1
cmake --build build-gpu -j 16 --target ctmq-shard ctmq-plan ctmq-train ctmq-eval \
  >"$out/build.log" 2>&1 || { grep -E "error" "$out/build.log" | head -20; exit 1; }
bash data-prep/fashion-mnist.sh >"$out/shard.log" 2>&1 || { tail "$out/shard.log"; exit 1; }
mkdir -p runs
pids=()
for seed in 1 2 3; do
  sed "s/^seed = .*/seed = $seed/" pipeline/configs/fashion-mnist-gpu.ini >"runs/gpu-seed$seed.ini"
  bash pipeline/run-chain.sh "runs/gpu-seed$seed.ini" "runs/fashion-mnist-gpu-seed$seed" \
    >"$out/chain-seed$seed.log" 2>&1 &
  pids+=($!)
done
# Ship what exists every 20 s, so a run cut short still returns its finished stages.
while kill -0 "${pids[@]}" 2>/dev/null; do
  sleep 20
  tar czf "$out/runs.tgz.part" --exclude='checkpoints' --exclude='*.pt' runs && mv "$out/runs.tgz.part" "$out/runs.tgz"
done
wait
tar czf "$out/runs.tgz" --exclude='checkpoints' --exclude='*.pt' runs
nvidia-smi --query-gpu=name --format=csv,noheader
for seed in 1 2 3; do echo "== seed $seed"; tail -15 "$out/chain-seed$seed.log"; done
