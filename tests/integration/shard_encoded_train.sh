#!/usr/bin/env bash
# An ImageNet-style JPEG folder through the documented commands, in small:
# real Fashion-MNIST test images upscaled by Debian's Pillow to 40..120 px
# (gray and RGB JPEG, and PNG) -> ctmq-shard --record encoded (some files kept,
# larger ones resized; one process = a 2-slice array, byte for byte) ->
# ctmq-train --augment random-resized-crop for a few steps -> ctmq-eval (the
# evaluation transform); crop-flip on encoded records is refused by name.
# Env: CTMQ_BIN_DIR (executables), CTMQ_SOURCE_DIR, CTMQ_FASHION_MNIST_DIR.
set -euo pipefail
test_name=shard_encoded_train
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
require_bins ctmq-shard ctmq-train ctmq-eval
mnist=${CTMQ_FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
py=/usr/bin/python3  # Debian's, with PIL (python3-pil)

# 3 classes x 24 images; sizes cycle through 40x40 .. 120x90, gray/RGB, JPEG/PNG.
PYTHONPATH=$src/tests/integration $py - "$mnist" "$tmp/tree" <<'PY'
import os, sys
from PIL import Image
from fashion_test_images import first_test_images
mnist, root = sys.argv[1:3]
sizes = [(40, 40), (120, 90), (64, 48), (90, 120), (100, 100)]
for c, k, im in first_test_images(mnist, per_class=24):
    im = im.resize(sizes[k % len(sizes)], Image.BILINEAR)
    if k % 2:
        im = Image.merge("RGB", (im, im.rotate(90), im.transpose(Image.FLIP_LEFT_RIGHT)))
    d = os.path.join(root, "class%d" % c)
    os.makedirs(d, exist_ok=True)
    if k % 3 == 2:
        im.save(os.path.join(d, "%02d.png" % k))
    else:
        im.save(os.path.join(d, "%02d.jpg" % k), quality=85)
PY
shard=("$bin/ctmq-shard" --format image-folder --input "$tmp/tree" --record encoded --max-side 64
       --image-size 32x32 --channels 3 --records-per-shard 20)
"${shard[@]}" --output "$tmp/one" >/dev/null 2>&1 || fail "ctmq-shard --record encoded"
for i in 1 0; do "${shard[@]}" --output "$tmp/array" --array-index $i --array-count 2 >/dev/null 2>&1; done
"${shard[@]}" --output "$tmp/array" --merge --array-count 2 >/dev/null 2>&1
for f in manifest.json shard-00000.ctmq shard-00001.ctmq shard-00002.ctmq shard-00003.ctmq; do
  cmp "$tmp/one/$f" "$tmp/array/$f" || fail "$f differs between one process and a 2-slice array"
done
[[ $(json_field "$tmp/one/manifest.json" record) == encoded ]] || fail "manifest record"
[[ $(json_field "$tmp/one/manifest.json" count) == 72 ]] || fail "manifest count"
"$bin/ctmq-shard" --check "$tmp/one/manifest.json" >/dev/null
echo "ok: 72 encoded records, 2-slice array = one process, --check passes"

cat >"$tmp/run.ini" <<INI
[data]
train-manifest = $tmp/one/manifest.json
test-manifest = $tmp/one/manifest.json
train-limit = 48
[model]
arch = small-resnet
width = 4
[train]
batch = 8
threads = 1
seed = 3
augment = random-resized-crop
checkpoint-every = 4
log-every = 2
[plan]
cycles = 1
INI
train=("$bin/ctmq-train" --config "$tmp/run.ini" --run-dir "$tmp/run" --stage c0-fp --epochs 1)
"${train[@]}" 2>"$tmp/train.log" || { cat "$tmp/train.log" >&2; fail "ctmq-train --augment random-resized-crop"; }
[[ -e $tmp/run/stages/c0-fp/DONE ]] || fail "c0-fp not DONE"
"$bin/ctmq-eval" --config "$tmp/run.ini" --run-dir "$tmp/run" --stage c0-fp >"$tmp/eval.out" 2>"$tmp/eval.log" ||
  { cat "$tmp/eval.log" >&2; fail "ctmq-eval on encoded records"; }
echo "ok: 6 steps with random-resized-crop, then ctmq-eval"
expect_error "crop-flip on encoded records" "--augment crop-flip" \
  "$bin/ctmq-train" --config "$tmp/run.ini" --run-dir "$tmp/run2" --stage c0-fp --epochs 1 \
  --augment crop-flip
echo "PASS"
