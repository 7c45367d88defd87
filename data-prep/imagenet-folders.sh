#!/usr/bin/env bash
# ImageNet-style folders (torchvision ImageFolder: ROOT/{train,val}/CLASS/*.{png,jpg,jpeg})
# -> ctmq shards, resized to a fixed size.
#
# NOT RUN on ImageNet here (no copy on the development machine); only on a tiny
# PNG tree made by tests/integration/shard_fashion_mnist.sh. ImageNet's JPEG
# files are read as they are (libjpeg-turbo; tests/integration/shard_jpeg.sh).
# Memory stays bounded (one image at a time); for ~1.28 M images use --slurm N
# with N of 64 or more (each task converts a contiguous range of shards).
#
# Usage: data-prep/imagenet-folders.sh [--array-count N | --slurm N] ROOT [OUT_DIR]
#   env IMAGE_SIZE (default 224x224), CHANNELS (3), RECORDS_PER_SHARD (0 = ~256 MiB)
# Default OUT_DIR: shards/imagenet under the repository. Idempotent.
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "$0")/common.sh"
start_input_recipe imagenet "$@"
root=$RECIPE_INPUT
for split in train val; do
  [[ -d $root/$split ]] || { echo "data-prep: $root/$split missing; skipped" >&2; continue; }
  build_split "$OUT_DIR/$split" "$ARRAY" "$SLURM" --format image-folder --input "$root/$split" \
    --image-size "${IMAGE_SIZE:-224x224}" --size-mismatch resize --channels "${CHANNELS:-3}" \
    --records-per-shard "${RECORDS_PER_SHARD:-0}"
done
