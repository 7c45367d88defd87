#!/usr/bin/env bash
# ImageNet-style folders (torchvision ImageFolder: ROOT/{train,val}/CLASS/*.{jpg,jpeg,png})
# -> ctmq encoded shards (version 2, docs/shard-format.md): each image is kept as
# its file's bytes when its shorter side is at most MAX_SIDE, else resized so the
# shorter side is MAX_SIDE and stored as a JPEG of quality JPEG_QUALITY (FFCV's
# policy: ~1.28 M ImageNet images at 256 px take a fraction of the ~193 GB that
# raw 224x224x3 records would). The reader crops them to IMAGE_SIZE: random
# resized crop for training ([train] augment = random-resized-crop), resize and
# centre crop for evaluation. Grey and CMYK JPEGs become RGB (3 channels).
#
# NOT RUN on ImageNet here (no copy on the development machine); run on a tiny
# JPEG tree of real Fashion-MNIST images by tests/integration/imagenet_dry_run.sh.
# Memory stays bounded (one image at a time); for ~1.28 M images use --slurm N
# with N of 64 or more (each task converts a contiguous range of shards).
# Then train with pipeline/configs/imagenet-resnet18.ini (README.md).
#
# Usage: data-prep/imagenet-folders.sh [--array-count N | --slurm N] ROOT [OUT_DIR]
#   env MAX_SIDE (default 256; 0 = keep every file's bytes), JPEG_QUALITY (90),
#       IMAGE_SIZE (224x224: what the reader delivers), RECORDS_PER_SHARD (0 = 2048)
# Output: OUT_DIR/{train,val}/manifest.json + shards (default OUT_DIR:
# shards/imagenet under the repository). A split whose ROOT/SPLIT is missing is
# skipped with a message. Idempotent.
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "$0")/common.sh"
start_input_recipe imagenet "$@"
root=$RECIPE_INPUT
for split in train val; do
  [[ -d $root/$split ]] || { echo "data-prep: $root/$split missing; skipped" >&2; continue; }
  build_split "$OUT_DIR/$split" "$ARRAY" "$SLURM" --format image-folder --input "$root/$split" \
    --record encoded --max-side "${MAX_SIDE:-256}" --jpeg-quality "${JPEG_QUALITY:-90}" \
    --image-size "${IMAGE_SIZE:-224x224}" --channels 3 \
    --records-per-shard "${RECORDS_PER_SHARD:-0}"
done
