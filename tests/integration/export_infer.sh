#!/usr/bin/env bash
# From a trained W1A1 stage to the bit-packed engine, on real Fashion-MNIST:
# c0-fp, then c1-w1a1 from it; ctmq-eval scores the stage with BatchNorm
# re-estimated (and saves that network, eval-network.pt); ctmq-export packs it;
# ctmq-infer, with --reference eval-network.pt, must give the same
# prediction as LibTorch on each of the 10,000 test images, the top-1 of
# eval.json, logits within 1e-4 on 99 % of the images (docs/deploy.md), with the AVX2 and the portable kernels; a
# folder of PNGs of the same test images gives the same top-1. Both stages
# exported with --format state-dict and rebuilt in PyTorch (Debian's
# /usr/bin/python3) score exactly eval.json's top-1. Bad inputs: a non-W1A1
# stage, a changed byte, a truncated file, an unknown format. Env: CTMQ_BIN_DIR.
set -euo pipefail
test_name=export_infer
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
field() { /usr/bin/python3 -c 'import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."): v = v[k]
print(v)' "$1" "$2"; }
# expect_error WHAT PATTERN CMD...: CMD must exit 1 (stricter than lib.sh's:
# not any non-zero status) with PATTERN on stderr.
expect_error() {
  local what=$1 pattern=$2 rc=0
  shift 2
  "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
  ((rc == 1)) || fail "$what: exit $rc, expected 1: $(cat "$tmp/err")"
  grep -q -- "$pattern" "$tmp/err" || fail "$what: no '$pattern' in: $(cat "$tmp/err")"
  echo "export_infer: $what refused: $(head -c 300 "$tmp/err")"
}

shard_fashion_mnist "$tmp/shards"
test_manifest=$tmp/shards/test/manifest.json
cat >"$tmp/run.ini" <<INI
[data]
train-manifest = $tmp/shards/train/manifest.json
test-manifest = $test_manifest
train-limit = 3000
[train]
batch = 64
threads = 1
[eval]
threads = 1
bn-recalibrate-batches = 5
batch = 200
INI
run=$tmp/run
"$bin/ctmq-train" --config "$tmp/run.ini" --run-dir "$run" --stage c0-fp >"$tmp/train.log" 2>&1 ||
  { cat "$tmp/train.log" >&2; fail "ctmq-train c0-fp"; }
"$bin/ctmq-train" --config "$tmp/run.ini" --run-dir "$run" --stage c1-w1a1 --w-bits 1 --a-bits 1 \
  --init c0-fp >"$tmp/train.log" 2>&1 || { cat "$tmp/train.log" >&2; fail "ctmq-train c1-w1a1"; }
"$bin/ctmq-eval" --config "$tmp/run.ini" --run-dir "$run" --stage c1-w1a1 >"$tmp/eval.log" 2>&1 ||
  { cat "$tmp/eval.log" >&2; fail "ctmq-eval c1-w1a1"; }
eval_top1=$(field "$run/stages/c1-w1a1/eval.json" top1)

packed=$tmp/c1-w1a1.packed
"$bin/ctmq-export" --run-dir "$run" --stage c1-w1a1 --format packed --output "$packed" \
  >"$tmp/export.log" 2>&1 || { cat "$tmp/export.log" >&2; fail "ctmq-export"; }
cat "$tmp/export.log"
grep -q "x smaller" "$tmp/export.log" || fail "ctmq-export does not report the size"
# BatchNorm was re-estimated: the network eval.json scored is eval-network.pt.
final=$run/stages/c1-w1a1/eval-network.pt
grep -q "packing $final" "$tmp/export.log" || fail "ctmq-export did not pack eval-network.pt"
"$bin/ctmq-export" --network "$run/stages/c1-w1a1/final.pt" --output "$tmp/final.packed" >/dev/null ||
  fail "ctmq-export --network final.pt"
cmp -s "$tmp/final.packed" "$packed" && fail "final.pt and eval-network.pt packed the same"

for kernel in auto portable; do
  "$bin/ctmq-infer" --model "$packed" --test-manifest "$test_manifest" --reference "$final" \
    --kernel "$kernel" --threads 1 --output "$tmp/infer-$kernel.json" >"$tmp/infer.log" 2>&1 ||
    { cat "$tmp/infer.log" >&2; fail "ctmq-infer --kernel $kernel"; }
  cat "$tmp/infer.log"
  j=$tmp/infer-$kernel.json
  [[ $(field "$j" images) == 10000 ]] || fail "$kernel: not 10,000 images"
  [[ $(field "$j" reference.differing_predictions) == 0 ]] ||
    fail "$kernel: predictions differ from LibTorch's on $(field "$j" reference.differing_predictions) images"
  /usr/bin/python3 - "$j" "$eval_top1" <<'PY' || fail "$kernel: top-1 or logits differ"
import json, sys
r = json.load(open(sys.argv[1]))
assert abs(r["top1"] - float(sys.argv[2])) < 1e-9, (r["top1"], sys.argv[2])
assert abs(r["reference"]["top1"] - r["top1"]) < 1e-9
assert r["reference"]["logit_difference_p99"] < 1e-4, r["reference"]
assert r["reference"]["images_logit_difference_above_1e-3"] <= 0.01 * r["images"], r["reference"]
PY
done
echo "export_infer: 10,000 test images, same predictions as LibTorch, top-1 $eval_top1 % = eval.json's"

# The first 300 test images as CLASS/N.png (8-bit grey, lossless): the same top-1.
/usr/bin/python3 - "$CTMQ_FASHION_MNIST_DIR" "$tmp/png" <<'PY'
import gzip, os, sys
from PIL import Image
src, out = sys.argv[1], sys.argv[2]
with gzip.open(os.path.join(src, "t10k-images-idx3-ubyte.gz")) as f:
    images = f.read()[16:]
with gzip.open(os.path.join(src, "t10k-labels-idx1-ubyte.gz")) as f:
    labels = f.read()[8:]
for i in range(300):
    d = os.path.join(out, str(labels[i]))
    os.makedirs(d, exist_ok=True)
    Image.frombytes("L", (28, 28), images[784 * i:784 * (i + 1)]).save(os.path.join(d, f"{i}.png"))
PY
"$bin/ctmq-infer" --model "$packed" --test-manifest "$test_manifest" --limit 300 \
  --output "$tmp/first.json" >/dev/null 2>"$tmp/err" || fail "ctmq-infer --limit 300: $(cat "$tmp/err")"
"$bin/ctmq-infer" --model "$packed" --images "$tmp/png" --output "$tmp/png.json" >/dev/null \
  2>"$tmp/err" || fail "ctmq-infer --images: $(cat "$tmp/err")"
[[ $(field "$tmp/png.json" top1) == "$(field "$tmp/first.json" top1)" ]] ||
  fail "PNG folder top-1 $(field "$tmp/png.json" top1) != shards' $(field "$tmp/first.json" top1)"
echo "export_infer: PNG folder of 300 test images: top-1 $(field "$tmp/png.json" top1) %, as from the shards"

# Both stages as state-dict exports, rebuilt in PyTorch (analysis/ctmq_analysis/
# torch_model.py): the same number of correct test images as eval.json's top-1.
"$bin/ctmq-eval" --config "$tmp/run.ini" --run-dir "$run" --stage c0-fp >"$tmp/eval.log" 2>&1 ||
  { cat "$tmp/eval.log" >&2; fail "ctmq-eval c0-fp"; }
for stage in c0-fp c1-w1a1; do
  "$bin/ctmq-export" --run-dir "$run" --stage "$stage" --format state-dict \
    --output "$tmp/$stage.pt" >"$tmp/export.log" 2>&1 || { cat "$tmp/export.log" >&2; fail "ctmq-export --format state-dict $stage"; }
  cat "$tmp/export.log"
  # The network eval.json scored: eval-network.pt (BatchNorm re-estimated, W1A1) or final.pt.
  scored=$run/stages/$stage/eval-network.pt
  [[ -e $scored ]] || scored=$run/stages/$stage/final.pt
  grep -q "exporting $scored" "$tmp/export.log" || fail "$stage: ctmq-export did not export $scored"
  [[ -s $tmp/$stage.pt.json ]] || fail "$stage: no $stage.pt.json beside the export"
  PYTHONPATH=$src/analysis /usr/bin/python3 -m ctmq_analysis.torch_model "$tmp/$stage.pt" \
    --fashion-mnist "$CTMQ_FASHION_MNIST_DIR" >"$tmp/torch.json" 2>"$tmp/err" ||
    fail "$stage: torch_model: $(cat "$tmp/err")"
  /usr/bin/python3 - "$tmp/torch.json" "$run/stages/$stage/eval.json" <<'PY' ||
import json, sys
t, e = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert t["images"] == e["samples"] == 10000, (t, e["samples"])
want = round(e["top1"] * e["samples"] / 100)
assert t["correct"] == want, "PyTorch %d correct, eval.json %d" % (t["correct"], want)
PY
    fail "$stage: PyTorch's top-1 $(field "$tmp/torch.json" top1) != eval.json's $(field "$run/stages/$stage/eval.json" top1)"
  echo "export_infer: $stage in PyTorch: top-1 $(field "$tmp/torch.json" top1) % on 10,000 test images = eval.json's"
done
expect_error "an unknown format" "the formats are: packed, state-dict" \
  "$bin/ctmq-export" --run-dir "$run" --stage c0-fp --format onnx --output "$tmp/x.onnx"

# Bad inputs.
expect_error "a full-precision stage" "is at fp; only W1A1 stages export" \
  "$bin/ctmq-export" --run-dir "$run" --stage c0-fp --output "$tmp/fp.packed"
[[ ! -e $tmp/fp.packed ]] || fail "a file was written for the refused stage"
cp "$packed" "$tmp/bad.packed"
size=$(stat -c %s "$packed")
for offset in 5 300 $((size / 2)) $((size - 30)); do
  cp "$packed" "$tmp/bad.packed"
  printf '\x55' | dd of="$tmp/bad.packed" bs=1 seek="$offset" conv=notrunc status=none
  cmp -s "$packed" "$tmp/bad.packed" && continue  # the byte was already 0x55
  expect_error "byte $offset changed" "bad.packed" "$bin/ctmq-infer" --model "$tmp/bad.packed" \
    --test-manifest "$test_manifest" --limit 10
done
head -c $((size - 100)) "$packed" >"$tmp/short.packed"
expect_error "a truncated file" "short.packed" "$bin/ctmq-infer" --model "$tmp/short.packed" \
  --test-manifest "$test_manifest" --limit 10
expect_error "a network file given as --model" "eval-network.pt is another kind of ctmq file" "$bin/ctmq-infer" --model "$final" \
  --test-manifest "$test_manifest" --limit 10
echo "export_infer: PASS"
