#!/usr/bin/env bash
# Fashion-MNIST end to end through ctmq-shard and data-prep/fashion-mnist.sh:
#  1. one process builds train (60,000) and test (10,000);
#  2. a 4-task array (4 ctmq-shard slice runs, then --merge; what
#     slurm/shard.sbatch does, without Slurm) builds them again: the manifests
#     must be byte-identical (cmp) and so must every shard file;
#  3. a rerun is skipped (idempotent) and leaves the files untouched;
#  4. bad inputs through the executable: flipped byte, truncated shard,
#     missing shard, manifest path escaping its directory, wrong magic, newer
#     version, a .png that is not a PNG, a complete output directory: each
#     exits non-zero with one error line naming the file, and nothing complete
#     is overwritten;
#  5. a tiny PNG tree (written by matplotlib) through data-prep/imagenet-folders.sh.
set -euo pipefail
test_name=shard_fashion_mnist
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
export CTMQ_FASHION_MNIST_DIR=${CTMQ_FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
work=$tmp
shard=$bin/ctmq-shard
py=python3

# 1. One process.
bash "$src/data-prep/fashion-mnist.sh" "$work/one"
[[ $(json_field "$work/one/train/manifest.json" count) == 60000 ]] || fail "train count"
[[ $(json_field "$work/one/test/manifest.json" count) == 10000 ]] || fail "test count"
[[ $(json_field "$work/one/train/manifest.json" class_names) == *"Ankle boot"* ]] || fail "names"
find "$work/one/train" -maxdepth 1 -name 'shard-*.ctmq' | wc -l | grep -qx 12 || fail "12 train shards expected"

# 2. A 4-task array, then merge: identical manifests (byte for byte) and shards.
bash "$src/data-prep/fashion-mnist.sh" --array-count 4 "$work/array"
for split in train test; do
  cmp "$work/one/$split/manifest.json" "$work/array/$split/manifest.json" \
    || fail "$split manifests differ"
  for f in "$work/one/$split"/shard-*.ctmq; do
    cmp "$f" "$work/array/$split/$(basename "$f")" || fail "$f differs"
  done
  "$shard" --check "$work/array/$split/manifest.json"
done
echo "ok: one-process and 4-task array manifests are byte-identical"

# 3. Idempotent rerun.
before=$(stat -c %Y.%s "$work/one/train/manifest.json" "$work/one/train/shard-00000.ctmq")
rerun=$(bash "$src/data-prep/fashion-mnist.sh" "$work/one")
[[ $(grep -c "complete and valid; skipped" <<<"$rerun") == 2 ]] || fail "rerun not skipped: $rerun"
[[ $(stat -c %Y.%s "$work/one/train/manifest.json" "$work/one/train/shard-00000.ctmq") == "$before" ]] \
  || fail "rerun touched files"

# 4. Bad inputs, each on a fresh copy of the test split.
fresh() { rm -rf "$work/bad"; cp -r "$work/one/test" "$work/bad"; }
record_size=$((4 + 784 + 4))
flip() {  # flip a bit of byte $2 of file $1
  $py - "$1" "$2" <<'PY'
import sys
path, offset = sys.argv[1], int(sys.argv[2])
with open(path, "r+b") as f:
    f.seek(offset); b = f.read(1); f.seek(offset); f.write(bytes([b[0] ^ 0x20]))
PY
}
fresh; flip "$work/bad/shard-00001.ctmq" $((64 + 42 * record_size + 4 + 400))
expect_error "flipped byte" "shard-00001.ctmq: record 42 (data set index 5042)" \
  "$shard" --check "$work/bad/manifest.json"
fresh; truncate -s -10 "$work/bad/shard-00000.ctmq"
expect_error "truncated shard" "shard-00000.ctmq.*truncated" "$shard" --check "$work/bad/manifest.json"
fresh; rm "$work/bad/shard-00001.ctmq"
expect_error "missing shard" "shard-00001.ctmq.*cannot be opened" \
  "$shard" --check "$work/bad/manifest.json"
fresh; sed -i 's#"shard-00000.ctmq"#"../test/shard-00000.ctmq"#' "$work/bad/manifest.json"
expect_error "path outside" "outside its directory" "$shard" --check "$work/bad/manifest.json"
fresh; printf 'XXXXXXXX' | dd of="$work/bad/shard-00000.ctmq" conv=notrunc status=none
expect_error "wrong magic" "shard-00000.ctmq: wrong magic" "$shard" --check "$work/bad/manifest.json"
fresh; sed -i 's/"version": 1/"version": 3/' "$work/bad/manifest.json"  # 2 = encoded records
expect_error "newer manifest" "manifest.json: version 3 was written by a newer" \
  "$shard" --check "$work/bad/manifest.json"
fresh; $py - "$work/bad/shard-00000.ctmq" <<'PY'
import struct, sys, zlib
path = sys.argv[1]
with open(path, "r+b") as f:
    h = bytearray(f.read(64)); h[8:12] = struct.pack("<I", 3)  # 2 = encoded records
    h[52:56] = struct.pack("<I", zlib.crc32(bytes(h[:52]))); f.seek(0); f.write(h)
PY
expect_error "newer shard" "shard-00000.ctmq: format version 3 was written by a newer" \
  "$shard" --check "$work/bad/manifest.json"
# A complete output is never overwritten.
sum_before=$(md5sum "$work/one/test/manifest.json" "$work/one/test/shard-00000.ctmq")
expect_error "complete output" "already holds a complete data set" "$shard" --format idx \
  --input "$CTMQ_FASHION_MNIST_DIR/t10k-images-idx3-ubyte.gz" \
  --input "$CTMQ_FASHION_MNIST_DIR/t10k-labels-idx1-ubyte.gz" --output "$work/one/test"
[[ $(md5sum "$work/one/test/manifest.json" "$work/one/test/shard-00000.ctmq") == "$sum_before" ]] \
  || fail "complete output changed"

# 5. A tiny PNG tree (real PNG files from matplotlib) through the ImageNet recipe.
/usr/bin/python3 - "$work/png/train" <<'PY'
import os, sys
import numpy as np
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
root = sys.argv[1]
rng = np.random.default_rng(0)
for c, name in enumerate(["cat", "dog", "fish"]):
    os.makedirs(os.path.join(root, name))
    for i in range(4):
        size = (12, 10) if i != 3 else (20, 16)  # one image of another size per class
        plt.imsave(os.path.join(root, name, f"{i}.png"), rng.random(size + (3,)))
PY
expect_error "size mismatch rejected" "3.png.*--size-mismatch resize" "$shard" \
  --format image-folder --input "$work/png/train" --output "$work/png-reject"
[[ ! -e $work/png-reject/manifest.json ]] || fail "manifest after a rejected image"
IMAGE_SIZE=8x8 RECORDS_PER_SHARD=5 bash "$src/data-prep/imagenet-folders.sh" --array-count 2 \
  "$work/png" "$work/png-shards"
[[ $(json_field "$work/png-shards/train/manifest.json" count) == 12 ]] || fail "png count"
"$shard" --check "$work/png-shards/train/manifest.json"
printf 'not a png' >"$work/png/train/dog/9.png"
expect_error "not a PNG" "dog/9.png is not a PNG.*input record 8" "$shard" --format image-folder \
  --input "$work/png/train" --image-size 8x8 --size-mismatch resize --output "$work/png-bad"
[[ ! -e $work/png-bad/manifest.json ]] || fail "manifest after a bad PNG"
echo "PASS"
