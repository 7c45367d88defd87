#!/usr/bin/env bash
# A preemption signal at any moment of a stage's life ends in exit 75 with
# what a rerun needs (or, after the last step, a finished stage), and the rerun
# completes the stage (issue [7/12] #3; docs/training.md, "Preemption"):
#  1. SIGUSR1 and SIGTERM sent to ctmq-train 0.02-0.6 s after it starts:
#     during the library load (held by the launcher), MPI init and set-up.
#  2. SIGUSR1 raised at named points (CTMQ_TEST_SIGNAL_AT): after MPI init,
#     during data set-up, after the weight import (--init STAGE), during a
#     checkpoint write, before the final write; each also on 2 ranks (mpirun).
#  3. ctmq-eval: a signal at start-up and during the evaluation: exit 75,
#     no eval.json; the rerun writes it.
#  4. pipeline/run-stage.sh signalled before it starts the program: exit 75.
#  5. Two ctmq-train on one stage at once: the second is refused by the stage
#     lock, naming the holder; the first finishes.
# Env: CTMQ_BIN_DIR (executables), CTMQ_SOURCE_DIR, CTMQ_FASHION_MNIST_DIR.
set -euo pipefail
test_name=preemption_points
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
require_bins ctmq-train ctmq-train-main ctmq-eval ctmq-eval-main ctmq-plan

shard_fashion_mnist "$tmp/shards"
write_run_ini "$tmp/run.ini" "$tmp/shards" data.train-limit=128 data.test-limit=200 \
  model.arch= train.seed=3 train.checkpoint-every=2 train.log-every=2 eval.batch= eval.threads=
train=("$bin/ctmq-train" --config "$tmp/run.ini")
runs=0

# finish RUN STAGE [args]: reruns the stage to DONE (exit 0).
finish() {
  local run=$1 stage=$2
  "${train[@]}" --run-dir "$run" --stage "$stage" --epochs 1 "${@:3}" >"$tmp/rerun.log" 2>&1 ||
    { cat "$tmp/rerun.log"; fail "$run $stage: the rerun after preemption exited $?"; }
  [[ -f $run/stages/$stage/DONE ]] || fail "$run $stage: no DONE after the rerun"
}

# A DONE c0-fp for the --init cases.
base=$tmp/base
"${train[@]}" --run-dir "$base" --stage c0-fp --epochs 1 >"$tmp/base.log" 2>&1 ||
  { cat "$tmp/base.log"; fail "c0-fp"; }

echo "== 1. signals sent 0.02-0.6 s after start"
for signal in USR1 TERM; do
  for delay in 0.02 0.05 0.1 0.2 0.4 0.6; do
    run=$tmp/delay-$signal-$delay
    "${train[@]}" --run-dir "$run" --stage c0-fp --epochs 1 >"$tmp/s.log" 2>&1 &
    pid=$!
    sleep "$delay"
    kill -s "$signal" "$pid" 2>/dev/null || true
    rc=0
    wait "$pid" || rc=$?
    # 0 only if the stage had already finished (it takes over a second).
    [[ $rc -eq 75 || ($rc -eq 0 && -f $run/stages/c0-fp/DONE) ]] ||
      { cat "$tmp/s.log"; fail "SIG$signal after ${delay}s: exit $rc, expected 75"; }
    [[ $rc -eq 0 ]] || finish "$run" c0-fp
    runs=$((runs + 1))
    echo "   SIG$signal after ${delay}s: exit $rc, rerun DONE"
  done
done

echo "== 2. SIGUSR1 at named points, 1 and 2 ranks"
for ranks in 1 2; do
  for point in main mpi-init setup weights-loaded checkpoint-write final-write; do
    run=$tmp/point-$ranks-$point
    mkdir -p "$run/stages"
    cp -r "$base/stages/c0-fp" "$run/stages/"
    launch=()
    ((ranks == 1)) || launch=(mpirun -n 2 --oversubscribe --bind-to none -x CTMQ_TEST_SIGNAL_AT)
    rc=0
    CTMQ_TEST_SIGNAL_AT=$point "${launch[@]}" "${train[@]}" --run-dir "$run" --stage c1-w2a2 \
      --w-bits 2 --a-bits 2 --init c0-fp --epochs 1 >"$tmp/p.log" 2>&1 || rc=$?
    grep -q "at point '$point'" "$tmp/p.log" || { cat "$tmp/p.log"; fail "point $point was not reached"; }
    if [[ $point == final-write ]]; then
      [[ $rc -eq 0 && -f $run/stages/c1-w2a2/DONE ]] ||
        { cat "$tmp/p.log"; fail "$point ($ranks ranks): exit $rc, expected 0 and DONE"; }
    else
      [[ $rc -eq 75 ]] || { cat "$tmp/p.log"; fail "$point ($ranks ranks): exit $rc, expected 75"; }
      [[ ! -f $run/stages/c1-w2a2/DONE ]] || fail "$point: DONE written by a preempted stage"
      [[ ! -f $run/stages/c1-w2a2/LOCK ]] || fail "$point: the stage lock outlived the stage"
      if [[ $point == checkpoint-write ]]; then
        ls "$run/stages/c1-w2a2/checkpoints/"*.pt >/dev/null 2>&1 || fail "$point: no checkpoint"
      fi
      finish "$run" c1-w2a2 --w-bits 2 --a-bits 2 --init c0-fp
    fi
    runs=$((runs + 1))
    echo "   $point on $ranks rank(s): exit $rc, then DONE"
  done
done

echo "== 3. ctmq-eval"
eval_cmd=("$bin/ctmq-eval" --config "$tmp/run.ini" --run-dir "$base" --stage c0-fp --bn-recalibrate-batches 0)
rc=0
CTMQ_TEST_SIGNAL_AT=evaluation "${eval_cmd[@]}" >"$tmp/e.log" 2>&1 || rc=$?
[[ $rc -eq 75 && ! -f $base/stages/c0-fp/eval.json ]] ||
  { cat "$tmp/e.log"; fail "ctmq-eval signalled during the evaluation: exit $rc, expected 75 and no eval.json"; }
"${eval_cmd[@]}" >"$tmp/e.log" 2>&1 & pid=$!
sleep 0.05
kill -USR1 "$pid"
rc=0
wait "$pid" || rc=$?
[[ $rc -eq 75 && ! -f $base/stages/c0-fp/eval.json ]] ||
  { cat "$tmp/e.log"; fail "ctmq-eval signalled at start-up: exit $rc, expected 75 and no eval.json"; }
"${eval_cmd[@]}" >"$tmp/e.log" 2>&1 || { cat "$tmp/e.log"; fail "ctmq-eval rerun"; }
[[ -f $base/stages/c0-fp/eval.json ]] || fail "ctmq-eval rerun wrote no eval.json"
runs=$((runs + 2))
echo "   evaluation and start-up: exit 75, no eval.json; rerun wrote it"

echo "== 4. run-stage.sh signalled before it starts the program"
run=$tmp/runner
mkdir -p "$run"
cp "$tmp/run.ini" "$run/config.ini"
"$bin/ctmq-plan" --config "$run/config.ini" --run-dir "$run" >/dev/null
bash "$src/pipeline/run-stage.sh" train "$run" c0-fp >"$tmp/r.log" 2>&1 & pid=$!
sleep 0.01
kill -USR1 "$pid"
rc=0
wait "$pid" || rc=$?
[[ $rc -eq 75 ]] || { cat "$tmp/r.log"; fail "run-stage.sh signalled at start: exit $rc, expected 75"; }
runs=$((runs + 1))
echo "   exit 75"

echo "== 5. two trainers on one stage"
run=$tmp/twice
"${train[@]}" --run-dir "$run" --stage c0-fp --epochs 1 --train-limit 6000 >"$tmp/first.log" 2>&1 & first=$!
for _ in $(seq 100); do [[ -f $run/stages/c0-fp/LOCK ]] && break; sleep 0.05; done
[[ -f $run/stages/c0-fp/LOCK ]] || fail "the first trainer took no lock"
rc=0
"${train[@]}" --run-dir "$run" --stage c0-fp --epochs 1 --train-limit 6000 >"$tmp/second.log" 2>&1 || rc=$?
[[ $rc -eq 1 ]] || { cat "$tmp/second.log"; fail "the second trainer exited $rc, expected 1"; }
grep -q "is being trained by host .* pid $first" "$tmp/second.log" ||
  { cat "$tmp/second.log"; fail "the refusal does not name the holder (pid $first)"; }
wait "$first" || { cat "$tmp/first.log"; fail "the first trainer failed"; }
[[ -f $run/stages/c0-fp/DONE && ! -f $run/stages/c0-fp/LOCK ]] || fail "first trainer: no DONE, or LOCK left"
echo "   second refused naming pid $first; first finished"

echo "preemption_points: OK ($runs preemptions, every one 75 or finished, every rerun DONE)"
