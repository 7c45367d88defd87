#!/usr/bin/env bash
# Bad input (issue 10, reliability), real Fashion-MNIST (small shards: 640
# training and 300 test images, so every record is read), tiny model:
#   1. seeded random byte flips (>= 20 positions each) and truncations of a
#      shard file, a checkpoint and a final.pt, each given to its consumer:
#        shard      -> ctmq-eval: exit 1, the shard named, no eval.json;
#        final.pt   -> ctmq-eval (exit 1, file named, no eval.json) and a later
#                      stage's --init (exit 1, file named, no file written in
#                      its stage directory); see 1b for the known gap;
#        checkpoint -> ctmq-train resuming: the damaged newest checkpoint is
#                      named in a warning and skipped; the stage resumes from
#                      the previous one and ends with exactly the tensors of
#                      an undamaged run (a damaged checkpoint is never used).
#   2. a manifest whose shard path leaves its directory ("../x", absolute).
# Configs and odd paths: bad_input_paths.sh; through real Slurm:
# bad_input_slurm.sh. Seed: CTMQ_FAULT_SEED (default: from the clock;
# printed). About 3 minutes on 2 cores. Env: CTMQ_BIN_DIR, CTMQ_SOURCE_DIR, CTMQ_FASHION_MNIST_DIR.
set -euo pipefail
test_name=bad_input
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
require_bins ctmq-shard ctmq-train ctmq-eval ctmq-plan
fashion=${CTMQ_FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
seed=${CTMQ_FAULT_SEED:-$(($(date +%s) % 1000000))}
echo "bad_input: seed $seed (rerun with CTMQ_FAULT_SEED=$seed)"
declare -A tried=() handled=()
count() { tried[$1]=$((${tried[$1]:-0} + 1)); handled[$1]=$((${handled[$1]:-0} + $2)); }

# --- small shards: the first 640 training and 300 test images ----------------
python3 - "$fashion" "$tmp/idx" <<'PY'
import gzip, os, struct, sys
src, out = sys.argv[1], sys.argv[2]
os.makedirs(out)
for prefix, n in (("train", 640), ("t10k", 300)):
    with gzip.open(f"{src}/{prefix}-images-idx3-ubyte.gz") as f:
        magic, count, rows, cols = struct.unpack(">IIII", f.read(16))
        images = f.read(n * rows * cols)
    with gzip.open(f"{src}/{prefix}-labels-idx1-ubyte.gz") as f:
        f.read(8)
        labels = f.read(n)
    with open(f"{out}/{prefix}-images-idx3-ubyte", "wb") as f:
        f.write(struct.pack(">IIII", magic, n, rows, cols) + images)
    with open(f"{out}/{prefix}-labels-idx1-ubyte", "wb") as f:
        f.write(struct.pack(">II", 2049, n) + labels)
PY
names="T-shirt/top,Trouser,Pullover,Dress,Coat,Sandal,Shirt,Sneaker,Bag,Ankle boot"
for split in train:train:320 test:t10k:300; do
  IFS=: read -r name prefix per <<<"$split"
  "$bin/ctmq-shard" --format idx --input "$tmp/idx/$prefix-images-idx3-ubyte" \
    --input "$tmp/idx/$prefix-labels-idx1-ubyte" --class-names "$names" --records-per-shard "$per" \
    --output "$tmp/shards/$name" >"$tmp/shard.log" 2>&1 || { cat "$tmp/shard.log"; fail "ctmq-shard $name"; }
done
write_run_ini "$tmp/run.ini" "$tmp/shards" data.test-manifest="$tmp/test/manifest.json" \
  train.checkpoint-every=5 train.log-every=5
run=$tmp/run
cp -r "$tmp/shards/test" "$tmp/test"
"$bin/ctmq-train" --config "$tmp/run.ini" --run-dir "$run" --stage c0-fp >"$tmp/train.log" 2>&1 ||
  { cat "$tmp/train.log"; fail "ctmq-train c0-fp"; }
"$bin/ctmq-eval" --config "$tmp/run.ini" --run-dir "$run" --stage c0-fp >"$tmp/eval.log" 2>&1 ||
  { cat "$tmp/eval.log"; fail "ctmq-eval c0-fp"; }
python3 -c 'import json,sys; e=json.load(open(sys.argv[1])); assert e["samples"] == 300, e["samples"]' \
  "$run/stages/c0-fp/eval.json" || fail "the evaluation did not read all 300 test records"
mv "$run/stages/c0-fp/eval.json" "$tmp/eval.good.json"
"$bin/ctmq-train" --config "$tmp/run.ini" --run-dir "$run" --stage c1-w2a2 --w-bits 2 --a-bits 2 --init c0-fp \
  >"$tmp/train2.log" 2>&1 || { cat "$tmp/train2.log"; fail "ctmq-train c1-w2a2"; }
mv "$run/stages/c1-w2a2" "$tmp/c1-w2a2.good"

# positions FILE N: N distinct seeded byte offsets in FILE (always including
# the first and last byte), one per line as "OFFSET XOR".
positions() {
  python3 - "$1" "$2" "$seed" <<'PY'
import os, random, sys
size, n = os.path.getsize(sys.argv[1]), int(sys.argv[2])
rng = random.Random(int(sys.argv[3]) * 1000003 + size)
picks = {0, size - 1}
while len(picks) < min(n, size):
    picks.add(rng.randrange(size))
for p in sorted(picks):
    print(p, rng.randrange(1, 256))
PY
}
flip() { python3 -c 'import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); b = f.read(1); f.seek(int(sys.argv[2])); f.write(bytes([b[0] ^ int(sys.argv[3])]))' "$@"; }
truncations() {  # truncations FILE: seeded lengths to cut FILE to (0, 1, two inside, size-1)
  python3 - "$1" "$seed" <<'PY'
import os, random, sys
size = os.path.getsize(sys.argv[1])
rng = random.Random(int(sys.argv[2]) * 7919 + size)
print(*sorted({0, 1, size - 1, *(rng.randrange(2, size - 1) for _ in range(2))}))
PY
}
# expect_refusal LABEL FILE_FRAGMENT COMMAND...: exit 1 and FILE_FRAGMENT
# named on an error line.
expect_refusal() {
  local label=$1 fragment=$2 rc=0
  shift 2
  "$@" >"$tmp/out" 2>&1 || rc=$?
  if ((rc != 1)) || ! grep -q "error.*$fragment" "$tmp/out"; then
    cat "$tmp/out" >&2
    fail "$label: exit $rc (expected 1 and an error naming $fragment)"
  fi
  # The kinds of error seen (paths and numbers blanked), printed per section.
  grep -m1 -o "error: .*" "$tmp/out" | sed -E "s|$tmp|TMP|g; s/[0-9a-f]{8}/HEX/g; s/[0-9]+/N/g" | cut -c1-160 >>"$tmp/kinds"
}
kinds() { sort "$tmp/kinds" | uniq -c | sed 's/^/     /'; rm -f "$tmp/kinds"; }
has_files() { [[ -d $1 && -n $(find "$1" -type f) ]]; }
evaluate() { "$bin/ctmq-eval" --config "$tmp/run.ini" --run-dir "$run" --stage c0-fp; }

# --- 1a. a shard file -> ctmq-eval -------------------------------------------
echo "== 1a. shard flips and truncations -> ctmq-eval"
shard=$tmp/test/shard-00000.ctmq
cp "$shard" "$tmp/shard.good"
while read -r offset mask; do
  cp "$tmp/shard.good" "$shard"
  flip "$shard" "$offset" "$mask"
  expect_refusal "shard flip at byte $offset" "shard-00000.ctmq" evaluate
  [[ ! -e $run/stages/c0-fp/eval.json ]] || fail "shard flip at byte $offset: eval.json written"
  count "shard byte flip" 1
done < <(positions "$shard" 20)
for length in $(truncations "$tmp/shard.good"); do
  cp "$tmp/shard.good" "$shard"
  truncate -s "$length" "$shard"
  expect_refusal "shard cut to $length bytes" "shard-00000.ctmq" evaluate
  [[ ! -e $run/stages/c0-fp/eval.json ]] || fail "shard cut to $length bytes: eval.json written"
  count "shard truncation" 1
done
cp "$tmp/shard.good" "$shard"
echo "   ${tried[shard byte flip]} flips, ${tried[shard truncation]} truncations: all refused by name, no eval.json"
kinds

# --- 1b. final.pt -> ctmq-eval and --init ------------------------------------
# Network files (format 3) are sealed: a footer with the CRC-32 of every byte
# is verified before LibTorch parses anything, so every flip, in a tensor or in
# the archive's other entries (TorchScript code, pickles, zip headers,
# padding), must be refused by name (before the seal a flip outside the
# tensors was ignored, reported without the name, or crashed LibTorch;
# docs/fault-injection.md). CTMQ_STRICT_NETWORK_FILES=0 only counts the
# non-tensor outcomes, for files of format < 3. A different result from a
# damaged file (silent corruption) always fails.
echo "== 1b. final.pt flips and truncations -> ctmq-eval, --init"
strict=${CTMQ_STRICT_NETWORK_FILES:-1}
final=$run/stages/c0-fp/final.pt
cp "$final" "$tmp/final.good"
init_next() {
  "$bin/ctmq-train" --config "$tmp/run.ini" --run-dir "$run" --stage c1-w2a2 --w-bits 2 --a-bits 2 --init c0-fp
}
same_eval() {  # same_eval A B: eval.json files equal but for elapsed_s
  python3 -c 'import json,sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
a.pop("elapsed_s"); b.pop("elapsed_s")
sys.exit(a != b)' "$1" "$2"
}
same_tensors() {
  python3 - "$1" "$2" <<'PY2'
import sys, zipfile
def entries(path):
    with zipfile.ZipFile(path) as z:
        return {n.split("/", 1)[1]: z.read(n) for n in z.namelist()}
sys.exit(entries(sys.argv[1]) != entries(sys.argv[2]))
PY2
}
# outcome CONSUMER LABEL: classifies the last run of CONSUMER (eval|init)
# whose exit status is $rc and output $tmp/out.
outcome() {
  if ((rc == 1)) && grep -q "error.*c0-fp/final.pt" "$tmp/out"; then
    if [[ $1 == eval && -e $run/stages/c0-fp/eval.json ]]; then fail "$2: refused but eval.json written"; fi
    if [[ $1 == init ]] && has_files "$run/stages/c1-w2a2"; then fail "$2: refused but stages/c1-w2a2 has files"; fi
    echo refused
  elif ((rc == 0)); then
    if [[ $1 == eval ]]; then
      same_eval "$tmp/eval.good.json" "$run/stages/c0-fp/eval.json" || fail "$2: SILENT CORRUPTION: exit 0 and another eval.json"
      rm -f "$run/stages/c0-fp/eval.json"
    else
      same_tensors "$tmp/c1-w2a2.good/final.pt" "$run/stages/c1-w2a2/final.pt" ||
        fail "$2: SILENT CORRUPTION: exit 0 and other c1-w2a2 weights"
      rm -rf "$run/stages/c1-w2a2"
    fi
    echo ignored-identical
  elif ((rc > 128)); then
    echo "crashed-signal-$((rc - 128))"
  else
    echo "error-without-file-name"
  fi
}
declare -A final_outcomes=()
# final_case LABEL REGION: both consumers on the damaged final.pt.
final_case() {
  local label=$1 region=$2 consumer result
  both_refused=1
  for consumer in eval init; do
    rm -f "$run/stages/c0-fp/eval.json"
    rc=0
    if [[ $consumer == eval ]]; then evaluate >"$tmp/out" 2>&1 || rc=$?; else init_next >"$tmp/out" 2>&1 || rc=$?; fi
    rm -f core core.*
    result=$(outcome "$consumer" "$label ($consumer)")
    final_outcomes["$consumer $result"]=$((${final_outcomes["$consumer $result"]:-0} + 1))
    if [[ $result != refused ]]; then
      both_refused=0
      echo "   $label [$region] -> $consumer: $result"
      if [[ $region == tensor || $strict == 1 ]]; then
        cat "$tmp/out" >&2
        fail "$label [$region] -> $consumer: $result, expected exit 1 naming the file"
      fi
    fi
  done
}
# Each position with its zip region: "tensor" (bytes of data/N) or the entry.
python3 - "$tmp/final.good" <<'PY2' >"$tmp/regions"
import struct, sys, zipfile
with open(sys.argv[1], "rb") as f:
    blob = f.read()
spans = []
for i in zipfile.ZipFile(sys.argv[1]).infolist():
    name_len, extra_len = struct.unpack("<HH", blob[i.header_offset + 26:i.header_offset + 30])
    start = i.header_offset + 30 + name_len + extra_len
    entry = i.filename.split("/", 1)[1]
    spans.append((i.header_offset, start, "header:" + entry))
    spans.append((start, start + i.compress_size, "tensor" if entry.startswith("data/") else "entry:" + entry))
print("\n".join(f"{a} {b} {r}" for a, b, r in spans))
PY2
region_of() {
  awk -v o="$1" '$1 <= o && o < $2 { print $3; found = 1; exit } END { if (!found) print "zip-directory" }' "$tmp/regions"
}
while read -r offset mask; do
  cp "$tmp/final.good" "$final"
  flip "$final" "$offset" "$mask"
  final_case "final.pt flip at byte $offset" "$(region_of "$offset")"
  count "final.pt byte flip" "$both_refused"
done < <(positions "$final" 20)
# 6 more flips inside tensor bytes only, at seeded positions.
while read -r offset mask; do
  cp "$tmp/final.good" "$final"
  flip "$final" "$offset" "$mask"
  final_case "final.pt tensor flip at byte $offset" tensor
  count "final.pt tensor byte flip" "$both_refused"
done < <(python3 - "$tmp/regions" "$seed" <<'PY2'
import random, sys
spans = [tuple(map(int, l.split()[:2])) for l in open(sys.argv[1]) if l.split()[2] == "tensor"]
rng = random.Random(int(sys.argv[2]) * 31 + 7)
weights = [b - a for a, b in spans]
for a, b in rng.choices(spans, weights=weights, k=6):
    print(rng.randrange(a, b), rng.randrange(1, 256))
PY2
)
for length in $(truncations "$tmp/final.good"); do
  cp "$tmp/final.good" "$final"
  truncate -s "$length" "$final"
  final_case "final.pt cut to $length bytes" truncation
  count "final.pt truncation" "$both_refused"
done
cp "$tmp/final.good" "$final"
rm -rf "$run/stages/c1-w2a2"
echo "   outcomes (consumer outcome: count): $(for k in "${!final_outcomes[@]}"; do printf '[%s: %s] ' "$k" "${final_outcomes[$k]}"; done)"

# --- 1c. the newest checkpoint -> ctmq-train resume --------------------------
echo "== 1c. checkpoint flips and truncations -> ctmq-train resume"
good=$tmp/c1-w2a2.good
mapfile -t ckpts < <(find "$good/checkpoints" -name 'step-*.pt' | sort)
((${#ckpts[@]} == 2)) || fail "expected 2 kept checkpoints, found ${#ckpts[@]}"
newest=$(basename "${ckpts[1]}") previous=$(basename "${ckpts[0]}")
# damaged_resume LABEL EDIT...: a copy of the finished stage without final.pt
# and DONE (as if stopped after its last checkpoint), the newest checkpoint
# edited by EDIT, then resumed.
damaged_resume() {
  local label=$1
  shift
  rm -rf "$run/stages/c1-w2a2"
  cp -r "$good" "$run/stages/c1-w2a2"
  rm "$run/stages/c1-w2a2/DONE" "$run/stages/c1-w2a2/final.pt"
  "$@" "$run/stages/c1-w2a2/checkpoints/$newest"
  init_next >"$tmp/out" 2>&1 || { cat "$tmp/out"; fail "$label: the resume failed"; }
  grep -q "warn.*$newest.*falling back" "$tmp/out" || { cat "$tmp/out"; fail "$label: no warning naming $newest"; }
  grep -q "resuming at step $((10#${previous//[!0-9]/}))" "$tmp/out" ||
    { cat "$tmp/out"; fail "$label: did not resume from $previous"; }
  python3 - "$good/final.pt" "$run/stages/c1-w2a2/final.pt" <<'PY' || fail "$label: final.pt differs from the undamaged run's"
import sys, zipfile
def entries(path):
    with zipfile.ZipFile(path) as z:
        return {n.split("/", 1)[1]: z.read(n) for n in z.namelist()}
sys.exit(entries(sys.argv[1]) != entries(sys.argv[2]))
PY
}
flip_at() { flip "$3" "$1" "$2"; }
cut_to() { truncate -s "$1" "$2"; }
ckpt_size=$(stat -c %s "${ckpts[1]}")
while read -r offset mask; do
  # The footer's last 4 bytes (its format version) are tried separately below.
  ((offset < ckpt_size - 4)) || continue
  damaged_resume "checkpoint flip at byte $offset" flip_at "$offset" "$mask"
  count "checkpoint byte flip" 1
done < <(positions "${ckpts[1]}" 21)
for length in $(truncations "${ckpts[1]}"); do
  damaged_resume "checkpoint cut to $length bytes" cut_to "$length"
  count "checkpoint truncation" 1
done
echo "   ${tried[checkpoint byte flip]} flips, ${tried[checkpoint truncation]} truncations: each named, skipped, resumed from $previous, tensors identical"
# The footer's format-version field is not covered by the CRC (see docs/fault-injection.md).
rm -rf "$run/stages/c1-w2a2"
cp -r "$good" "$run/stages/c1-w2a2"
rm "$run/stages/c1-w2a2/DONE" "$run/stages/c1-w2a2/final.pt"
flip "$run/stages/c1-w2a2/checkpoints/$newest" $((ckpt_size - 4)) 1
rc=0
init_next >"$tmp/out" 2>&1 || rc=$?
if grep -q "warn.*$newest" "$tmp/out" || ((rc == 1)); then version_flip="detected"; else version_flip="not detected (exit $rc)"; fi
echo "   a flip of the footer's version field: $version_flip"
rm -rf "$run/stages/c1-w2a2"

# --- 2. a manifest pointing outside its directory ----------------------------
echo "== 2. manifest shard paths outside the manifest's directory"
cp "$tmp/test/manifest.json" "$tmp/manifest.good"
for path in "../shards/test/shard-00000.ctmq" "$tmp/shards/test/shard-00000.ctmq" "sub/../../x.ctmq"; do
  python3 - "$tmp/manifest.good" "$tmp/test/manifest.json" "$path" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
m["shards"][0]["path"] = sys.argv[3]
json.dump(m, open(sys.argv[2], "w"), indent=2)
PY
  expect_refusal "manifest path '$path'" "manifest.json.*$path" evaluate
  [[ ! -e $run/stages/c0-fp/eval.json ]] || fail "manifest path '$path': eval.json written"
  count "manifest path outside its directory" 1
done
cp "$tmp/manifest.good" "$tmp/test/manifest.json"
echo "   ${tried[manifest path outside its directory]} manifests refused, naming the manifest and the path"
kinds

echo "bad_input: counts:"
for k in "${!tried[@]}"; do echo "   $k: ${handled[$k]} of ${tried[$k]} handled as specified above"; done
echo "bad_input: PASS (seed $seed)"
