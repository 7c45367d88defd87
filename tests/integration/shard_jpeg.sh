#!/usr/bin/env bash
# JPEG image folders through ctmq-shard: real Fashion-MNIST test images written
# by Debian's Pillow (/usr/bin/python3) as a torchvision-style tree, mixed PNG
# and JPEG (gray, RGB, CMYK, progressive; .jpg, .JPEG, .jpeg; one .jpg that is
# really a PNG; one file that is no image):
#  1. the tree shards with the right count and class names and --check passes;
#  2. a truncated JPEG and a .jpg holding garbage are each refused, naming the
#     file and the input record, and no manifest is written.
set -euo pipefail
test_name=shard_jpeg
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"  # expect_error, json_field, fail, $tmp
mnist=${CTMQ_FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
work=$tmp
shard=$bin/ctmq-shard
py=/usr/bin/python3  # Debian's, with PIL (python3-pil)

# 1. Classes 0, 1, 2 of the test split, 6 images each, in six forms.
PYTHONPATH=$src/tests/integration $py - "$mnist" "$work/tree" <<'PY'
import os, sys
from PIL import Image
from fashion_test_images import first_test_images
mnist, root = sys.argv[1:3]
names = ["T-shirt", "Trouser", "Pullover"]
for c, k, im in first_test_images(mnist, per_class=6):
    d = os.path.join(root, names[c])
    os.makedirs(d, exist_ok=True)
    if k == 0:
        im.save(os.path.join(d, f"{k}.png"))
        im.save(os.path.join(d, f"{k}-copy.jpg"), quality=95)
    elif k == 1:
        im.save(os.path.join(d, f"{k}.jpg"), quality=50)
    elif k == 2:
        Image.merge("RGB", (im, im, im)).save(os.path.join(d, f"{k}.JPEG"), "JPEG", quality=90)
    elif k == 3:
        im.save(os.path.join(d, f"{k}.jpeg"), quality=75, progressive=True)
    elif k == 4:
        Image.merge("CMYK", (im, im, im, im)).save(os.path.join(d, f"{k}.jpg"), quality=90)
    else:
        im.save(os.path.join(d, f"{k}.jpg"), format="PNG")  # a PNG by its signature
open(os.path.join(root, names[0], "notes.txt"), "w").write("not an image")
PY
"$shard" --format image-folder --input "$work/tree" --channels 1 --records-per-shard 7 \
  --output "$work/out"
[[ $(json_field "$work/out/manifest.json" count) == 21 ]] || fail "count (18 images + 3 copies)"
[[ $(json_field "$work/out/manifest.json" class_names) == "['Pullover', 'T-shirt', 'Trouser']" ]] \
  || fail "class names"
"$shard" --check "$work/out/manifest.json"
echo "ok: 21 records from a mixed PNG + JPEG tree, --check passes"

# 2. Bad files, each refused by name and record with no manifest.
cp -r "$work/tree" "$work/bad"
size=$(stat -c %s "$work/tree/Trouser/1.jpg")
head -c $((size - 100)) "$work/tree/Trouser/1.jpg" >"$work/bad/Trouser/1.jpg"  # cut in the scan
expect_error "truncated JPEG" "Trouser/1.jpg is not a valid JPEG (libjpeg-turbo: .*input record 16" \
  "$shard" --format image-folder --input "$work/bad" --channels 1 --output "$work/bad-out"
[[ ! -e $work/bad-out/manifest.json ]] || fail "manifest after a truncated JPEG"
cp "$work/tree/Trouser/1.jpg" "$work/bad/Trouser/1.jpg"
printf 'garbage' >"$work/bad/Pullover/3.jpeg"
expect_error "garbage .jpeg" "Pullover/3.jpeg is not a PNG or JPEG file.*input record 4" \
  "$shard" --format image-folder --input "$work/bad" --channels 1 --output "$work/bad-out2"
[[ ! -e $work/bad-out2/manifest.json ]] || fail "manifest after a garbage JPEG"
echo "PASS"
