#!/usr/bin/env bash
# Builds ctmq on the GPU machine (the image's PyTorch LibTorch with CUDA and
# NCCL, docs/building.md) and runs a CUDA smoke chain and, optionally, the GPU benchmark.
# Expects .carry/ from bench/gpu/prepare-carry.sh (carried to the machine).
# Usage: bash bench/gpu/gpu_check.sh [smoke|bench|nccl|all]   (output table last)
#   nccl: builds with NCCL (the nvidia-nccl wheel beside PyTorch) and the dist
#   tests, runs the NCCL world-of-one test and a 1-epoch stage with
#   --collectives nccl (one GPU: NCCL refuses two ranks on one GPU).
set -uo pipefail
what=${1:-all}
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 1
# shellcheck source=SCRIPTDIR/setup.sh
source bench/gpu/setup.sh
t0=$(date +%s)
configure=(-DCTMQ_BUILD_TESTS=OFF)
targets=()
[[ $what == bench || $what == all ]] && configure+=(-DCTMQ_BUILD_BENCH=ON)
if [[ $what == nccl || $what == all ]]; then
  # NCCL: the nvidia-nccl wheel beside PyTorch, found by cmake/ctmq_torch.cmake.
  configure+=(-DCTMQ_BUILD_TESTS=ON)
  [[ $what == nccl ]] && targets=(--target ctmq_dist_tests ctmq-train ctmq-eval ctmq-shard)
fi
ctmq_gpu_configure "${configure[@]}" || exit 1
cmake --build build-gpu -j 16 "${targets[@]}" -- -k 0 >"$out/build.log" 2>&1
build_rc=$?
t1=$(date +%s)
grep -E "error|FAILED" "$out/build.log" | head -40
echo "build rc=$build_rc in $((t1 - t0)) s"
bin=$root/build-gpu
rows=()
if [[ $what == smoke || $what == all ]]; then
  run=/tmp/ctmq-gpu-run
  rm -rf "$run" && mkdir -p "$run"
  bash data-prep/fashion-mnist.sh /tmp/ctmq-shards >"$out/shard.log" 2>&1 || tail -20 "$out/shard.log"
  cat >"$run.ini" <<INI
[data]
train-manifest = /tmp/ctmq-shards/train/manifest.json
test-manifest = /tmp/ctmq-shards/test/manifest.json
[model]
arch = small-resnet
[train]
batch = 256
device = cuda
# the GPU image may have no protobuf (CTMQ_TENSORBOARD off)
tensorboard = false
INI
  for stage in "c0-fp 32 32 none" "c1-w1a1 1 1 c0-fp"; do
    read -ra fields <<<"$stage"
    set -- "${fields[@]}"
    s0=$(date +%s.%N)
    CTMQ_BIN_DIR=$bin "$bin/ctmq-train" --config "$run.ini" --run-dir "$run" --stage "$1" \
      --w-bits "$2" --a-bits "$3" --epochs 2 --init "$4" >"$out/train-$1.log" 2>&1
    rc=$?
    s1=$(date +%s.%N)
    "$bin/ctmq-eval" --config "$run.ini" --run-dir "$run" --stage "$1" --device cuda \
      >"$out/eval-$1.log" 2>&1
    rows+=("train+eval $1 (cuda, 2 epochs 60k) rc=$rc $(awk "BEGIN{printf \"%.1f\", $s1 - $s0}") s: $(tail -1 "$out/eval-$1.log")")
  done
  tail -3 "$out/train-c0-fp.log"
fi
if [[ $what == nccl || $what == all ]]; then
  build-gpu/tests/ctmq_dist_tests --gtest_filter='Collectives.*:NcclCommunicator.*' \
    >"$out/nccl-test.log" 2>&1
  rows+=("NCCL tests rc=$? $(grep -cE '^\[ +OK' "$out/nccl-test.log") ok, $(grep -cE '^\[ +SKIPPED' "$out/nccl-test.log") skipped")
  run=/tmp/ctmq-gpu-nccl
  rm -rf "$run" && mkdir -p "$run"
  [[ -f /tmp/ctmq-shards/train/manifest.json ]] ||
    bash data-prep/fashion-mnist.sh /tmp/ctmq-shards >"$out/shard.log" 2>&1
  "$bin/ctmq-train" --run-dir "$run" --stage c0-fp --w-bits 32 --a-bits 32 --epochs 1 \
    --train-manifest /tmp/ctmq-shards/train/manifest.json --arch small-resnet --batch 256 \
    --device cuda --collectives nccl --sync-batch-norm always --allreduce-bucket-mb 0.05 --tensorboard false \
    >"$out/train-nccl.log" 2>&1
  rows+=("train c0-fp --collectives nccl (world of one) rc=$?: $(grep -m1 -oE 'epoch 1[^,]*' "$out/train-nccl.log" | tail -1)")
fi
if [[ $what == bench || $what == all ]]; then
  if [[ -x $bin/bench/ctmq-bench-train-throughput ]]; then
    "$bin/bench/ctmq-bench-train-throughput" --device cuda --python python3 --steps 20 \
      --repeats 1 --batches 256,1024 \
      --peer bench/train_peer.py >"$out/bench.log" 2>&1
    rows+=("bench rc=$?")
  fi
fi
nvidia-smi --query-gpu=name,memory.used --format=csv,noheader
echo "== summary =="
for r in "${rows[@]}"; do echo "$r"; done
[[ -f $out/bench.log ]] && tail -25 "$out/bench.log"
