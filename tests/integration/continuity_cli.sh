#!/usr/bin/env bash
# The one-graph check through the executables (method.md, "One network for
# every stage"): ctmq-train trains c0-fp on 4,000 real Fashion-MNIST images,
# then ctmq-eval scores the same weights at FP, W8A8 and W4A4 with BatchNorm
# re-estimated and no training. W8A8 must stay within 1 point of FP and W4A4
# within 3; the what-if evaluations never replace the stage's eval.json.
# About 1 minute on 2 cores. Env: CTMQ_BIN_DIR, CTMQ_SOURCE_DIR.
set -euo pipefail
test_name=continuity_cli
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

shard_fashion_mnist "$tmp/shards"
write_run_ini "$tmp/run.ini" "$tmp/shards" data.train-limit=4000 data.test-limit=2000 \
  model.width=16 train.batch=64 train.threads=2 train.seed=1 train.checkpoint-every=0 \
  train.log-every=50 eval.batch=250 eval.threads= eval.bn-recalibrate-batches=16
run=$tmp/run
"$bin/ctmq-train" --config "$tmp/run.ini" --run-dir "$run" --stage c0-fp --epochs 2 >"$tmp/train.log" 2>&1 ||
  { cat "$tmp/train.log" >&2; fail "ctmq-train c0-fp"; }
top1() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["top1"])' "$1"; }
"$bin/ctmq-eval" --config "$tmp/run.ini" --run-dir "$run" --stage c0-fp || fail "ctmq-eval c0-fp"
fp=$(top1 "$run/stages/c0-fp/eval.json")
for bits in 8 4; do
  "$bin/ctmq-eval" --config "$tmp/run.ini" --run-dir "$run" --stage c0-fp --w-bits $bits --a-bits $bits ||
    fail "ctmq-eval c0-fp at W${bits}A${bits}"
done
w8=$(top1 "$run/stages/c0-fp/eval-w8a8.json")
w4=$(top1 "$run/stages/c0-fp/eval-w4a4.json")
[[ $(top1 "$run/stages/c0-fp/eval.json") == "$fp" ]] || fail "a what-if evaluation replaced eval.json"
echo "continuity_cli: FP $fp %, W8A8 $w8 %, W4A4 $w4 % (same weights, BatchNorm re-estimated)"
python3 - "$fp" "$w8" "$w4" <<'PY' || fail "the quantized graph is not the full-precision one"
import sys
fp, w8, w4 = map(float, sys.argv[1:])
assert fp > 65, "FP %.2f %%: the model did not learn (chance is 10 %%)" % fp
assert abs(w8 - fp) <= 1.0, "W8A8 %.2f %% vs FP %.2f %%" % (w8, fp)
assert abs(w4 - fp) <= 3.0, "W4A4 %.2f %% vs FP %.2f %%" % (w4, fp)
PY
"$bin/ctmq-eval" --config "$tmp/run.ini" --run-dir "$run" --stage c0-fp --w-bits 12 2>"$tmp/err" && fail "--w-bits 12 accepted"
grep -q "w-bits" "$tmp/err" || fail "--w-bits 12: the error does not name the option: $(cat "$tmp/err")"
echo "continuity_cli: PASS"
