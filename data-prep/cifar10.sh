#!/usr/bin/env bash
# CIFAR-10 (binary version) -> ctmq shards: train (50,000) and test (10,000).
#
# NOT RUN on real data here: the development machine has no CIFAR-10 copy and no
# network. The CIFAR binary reader it relies on is unit-tested on synthetic
# batches (tests/data/record_source_test.cc).
#
# Input: CIFAR_DIR = the extracted cifar-10-batches-bin/ (data_batch_1..5.bin,
# test_batch.bin, batches.meta.txt for the class names).
# Usage: data-prep/cifar10.sh [--array-count N | --slurm N] CIFAR_DIR [OUT_DIR]
# Default OUT_DIR: shards/cifar10 under the repository. Idempotent.
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "$0")/common.sh"
start_input_recipe cifar10 "$@"
cifar=$RECIPE_INPUT
train_inputs=()
for i in 1 2 3 4 5; do train_inputs+=(--input "$cifar/data_batch_$i.bin"); done
build_split "$OUT_DIR/train" "$ARRAY" "$SLURM" --format cifar10 "${train_inputs[@]}" \
  --records-per-shard 10000
build_split "$OUT_DIR/test" "$ARRAY" "$SLURM" --format cifar10 --input "$cifar/test_batch.bin" \
  --records-per-shard 10000
