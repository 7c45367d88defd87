#!/usr/bin/env bash
# Fashion-MNIST -> ctmq shards: train (60,000 records) and test (10,000).
#
# Input: the IDX files of the Debian package dataset-fashion-mnist
# (/usr/share/datasets/fashion-mnist, or $CTMQ_FASHION_MNIST_DIR).
# Output: OUT_DIR/{train,test}/manifest.json + shards
# (default OUT_DIR: shards/fashion-mnist under the repository).
#
# Usage: data-prep/fashion-mnist.sh [--array-count N | --slurm N] [OUT_DIR]
#   (none)            one process per split
#   --array-count N   N slices run here in turn, then a merge (a job array without Slurm)
#   --slurm N         submit an N-task Slurm array per split plus a merge job (afterok)
# Idempotent: a split whose manifest exists and verifies is skipped.
# Takes a few seconds per split on one core.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/common.sh
source "$here/common.sh"
ctmq_exit_on_help "$@"
parse_common_flags "$@"
OUT_DIR=${OUT_DIR:-$(cd "$here/.." && pwd)/shards/fashion-mnist}
src=${CTMQ_FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
find_ctmq_shard
names="T-shirt/top,Trouser,Pullover,Dress,Coat,Sandal,Shirt,Sneaker,Bag,Ankle boot"
for split in train:train test:t10k; do
  name=${split%%:*}
  prefix=${split##*:}
  build_split "$OUT_DIR/$name" "$ARRAY" "$SLURM" --format idx \
    --input "$src/$prefix-images-idx3-ubyte.gz" --input "$src/$prefix-labels-idx1-ubyte.gz" \
    --class-names "$names" --records-per-shard 5000
done
