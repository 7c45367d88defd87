#!/usr/bin/env bash
# ctmq-train end to end on real Fashion-MNIST (tiny: train-limit, width 4):
#  - a 2-rank stage (mpirun -n 2) and a 2-rank quantized stage initialised from it;
#  - preemption by a real SIGUSR1 sent to mpirun: exit 75, checkpoint, no DONE;
#    the same command again finishes the stage (exit 0, DONE);
#  - a DONE stage is a no-op; bad input (unknown option, bits out of range,
#    missing manifest, init stage not DONE, a checkpoint of another width,
#    more ranks than samples, one rank failing alone) fails non-zero with a
#    clear message, never hangs, and leaves the run directory as it was.
# Env: CTMQ_BIN_DIR (executables), CTMQ_SOURCE_DIR, CTMQ_FASHION_MNIST_DIR.
set -euo pipefail
test_name=train_cli
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
require_bins ctmq-shard ctmq-train
mpi() { mpirun -n "$1" --oversubscribe --bind-to none "${@:2}"; }

shard_fashion_mnist "$tmp/shards"
write_run_ini "$tmp/run.ini" "$tmp/shards" data.train-limit=256 train.seed=7 \
  train.checkpoint-every=2 train.log-every=2 eval.batch= eval.threads= plan.cycles=1
train=("$bin/ctmq-train" --config "$tmp/run.ini" --run-dir "$tmp/run")
stage_dir=$tmp/run/stages

# 1. Two ranks, then a quantized stage from it.
mpi 2 "${train[@]}" --stage c0-fp --epochs 1 2>"$tmp/fp.log" || { cat "$tmp/fp.log"; fail "c0-fp"; }
[[ -f $stage_dir/c0-fp/DONE && -f $stage_dir/c0-fp/final.pt ]] || fail "c0-fp has no DONE/final.pt"
grep -q '"ranks":2' "$stage_dir/c0-fp/metrics.jsonl" || fail "metrics.jsonl does not say 2 ranks"
[[ $(wc -l <"$stage_dir/c0-fp/metrics.jsonl") -eq 4 ]] || fail "expected 4 metrics records (8 steps, log-every 2)"
grep -q 'img/s ETA' "$tmp/fp.log" || fail "no progress line on stderr"
mpi 2 "${train[@]}" --stage c1-w2a2 --w-bits 2 --a-bits 2 --init c0-fp --epochs 1 2>"$tmp/w2.log" ||
  { cat "$tmp/w2.log"; fail "c1-w2a2"; }
[[ -f $stage_dir/c1-w2a2/DONE ]] || fail "c1-w2a2 has no DONE"
grep -q '^w-bits = 2' "$stage_dir/c1-w2a2/config.ini" || fail "config.ini lacks the resolved w-bits"

# 2. A DONE stage is a no-op.
before=$(md5sum "$stage_dir/c0-fp/final.pt")
"${train[@]}" --stage c0-fp --epochs 1 2>"$tmp/again.log" || fail "rerun of a DONE stage failed"
grep -q "already DONE" "$tmp/again.log" || fail "rerun of a DONE stage did not say so"
[[ $(md5sum "$stage_dir/c0-fp/final.pt") == "$before" ]] || fail "DONE stage's final.pt changed"

# 3. Preemption: SIGUSR1 to mpirun (which forwards it) once a checkpoint exists.
long=(--stage c1-w1a1 --w-bits 1 --a-bits 1 --init c0-fp --epochs 12)
mpirun -n 2 --oversubscribe --bind-to none "${train[@]}" "${long[@]}" 2>"$tmp/preempt.log" &
pid=$!  # mpirun itself: it forwards SIGUSR1 to the ranks
for _ in $(seq 1 600); do
  compgen -G "$stage_dir/c1-w1a1/checkpoints/step-*.pt" >/dev/null && break
  sleep 0.1
done
kill -USR1 "$pid"
rc=0
wait "$pid" || rc=$?
[[ $rc -eq 75 ]] || { cat "$tmp/preempt.log"; fail "preempted run exited $rc, expected 75"; }
[[ ! -e $stage_dir/c1-w1a1/DONE && ! -e $stage_dir/c1-w1a1/final.pt ]] ||
  fail "a preempted stage has DONE or final.pt"
compgen -G "$stage_dir/c1-w1a1/checkpoints/step-*.pt" >/dev/null || fail "no checkpoint after preemption"
grep -q "preempted at step" "$tmp/preempt.log" || fail "no preemption message"

# 4. Bad input: clear errors, non-zero exit, nothing overwritten.
snapshot() { (cd "$tmp/run" && find . -type f -exec md5sum {} + | sort); }
expect_refusal() {  # expect_refusal FRAGMENT COMMAND... (exit neither 0 nor 75)
  local fragment=$1 rc=0
  shift
  "$@" >"$tmp/err.log" 2>&1 || rc=$?
  [[ $rc -ne 0 && $rc -ne 75 ]] || { cat "$tmp/err.log"; fail "'$*' exited $rc"; }
  grep -q -- "$fragment" "$tmp/err.log" || { cat "$tmp/err.log"; fail "no '$fragment' in the error"; }
}
state=$(snapshot)
expect_refusal "unrecognised option\|unknown option" "${train[@]}" --stage x --bogus 1
expect_refusal "--w-bits 9" "${train[@]}" --stage c1-w9a9 --w-bits 9 --a-bits 9
expect_refusal "does not exist" "${train[@]}" --stage c1-w4a4 --train-manifest "$tmp/none/manifest.json"
expect_refusal "is not DONE" "${train[@]}" --stage c2-w4a4 --init c1-w3a3
expect_refusal "width 4" "${train[@]}" "${long[@]}" --width 8
expect_refusal "only 1 training samples" mpi 2 "${train[@]}" --stage c1-w8a8 --train-limit 1 --batch 2
# One failing rank (MPMD: rank 1 gets a missing manifest) must end the job,
# not leave rank 0 waiting in its first collective.
rc=0
timeout 120 mpirun --oversubscribe --bind-to none -n 1 "${train[@]}" --stage c1-w8a8 : \
  -n 1 "${train[@]}" --stage c1-w8a8 --train-manifest "$tmp/none/manifest.json" >"$tmp/abort.log" 2>&1 ||
  rc=$?
[[ $rc -ne 0 && $rc -ne 124 ]] || { cat "$tmp/abort.log"; fail "one failing rank: exit $rc (124 = hung)"; }
grep -q "rank 1.*does not exist" "$tmp/abort.log" || { cat "$tmp/abort.log"; fail "no rank-tagged error"; }
[[ $(snapshot) == "$state" ]] || fail "a failed command changed the run directory"

# 5. The preempted stage finishes when run again (on 2 ranks, as before).
mpi 2 "${train[@]}" "${long[@]}" 2>"$tmp/resume.log" || { cat "$tmp/resume.log"; fail "resume"; }
grep -q "resuming at step" "$tmp/resume.log" || fail "the rerun did not resume"
[[ -f $stage_dir/c1-w1a1/DONE && -f $stage_dir/c1-w1a1/final.pt ]] || fail "resumed stage not DONE"
[[ $(compgen -G "$stage_dir/c1-w1a1/checkpoints/step-*.pt" | wc -l) -le 2 ]] || fail "more than 2 checkpoints kept"

# 6. Live metrics on 2 ranks: eval-every (every rank evaluates its slice of the
#    test set, rank 0 writes), one TensorBoard event file; a bad value is named.
mpi 2 "${train[@]}" --stage c1-w4a4 --w-bits 4 --a-bits 4 --init c0-fp --epochs 2 --eval-every 1 \
  --test-limit 200 2>"$tmp/eval.log" || { cat "$tmp/eval.log"; fail "eval-every"; }
grep -q "epoch 1: test top-1" "$tmp/eval.log" || { cat "$tmp/eval.log"; fail "no evaluation line"; }
[[ $(grep -c '"kind":"eval"' "$stage_dir/c1-w4a4/metrics.jsonl") -eq 1 ]] ||
  fail "expected 1 eval record in metrics.jsonl (2 epochs, eval-every 1: not after the last)"
grep -q '"kind":"eval".*"samples":200' "$stage_dir/c1-w4a4/metrics.jsonl" || fail "eval record: not 200 samples"
[[ $(compgen -G "$tmp/run/tensorboard/c1-w4a4/events.out.tfevents.*" | wc -l) -eq 1 ]] ||
  fail "expected one TensorBoard event file (rank 0 only) in $tmp/run/tensorboard/c1-w4a4"
rc=0
"${train[@]}" --stage c1-w3a3 --w-bits 3 --a-bits 3 --eval-every -1 2>"$tmp/bad-eval.log" || rc=$?
if [[ $rc -ne 1 ]] || ! grep -q "eval-every = -1" "$tmp/bad-eval.log"; then
  cat "$tmp/bad-eval.log"
  fail "--eval-every -1: exit $rc, no message naming it"
fi
[[ ! -e $stage_dir/c1-w3a3 ]] || fail "a refused eval-every wrote the stage directory"
echo "train_cli: OK"
