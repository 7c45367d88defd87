#!/usr/bin/env bash
# Fault injection (issue 10, reliability), real Fashion-MNIST, tiny model:
#   1. kill -9 of a 1-rank ctmq-train stage (checkpoint-every 2) at seeded
#      random points, 1-2 kills per trial, each followed by a rerun: the stage
#      resumes and its final.pt holds exactly the tensors of an uninterrupted
#      run. Kills that land before the first checkpoint, between checkpoints,
#      during a checkpoint write (a .tmp. file left behind), during the
#      final.pt write and after DONE are counted; the last three are also
#      aimed at on purpose (a poller that kills as soon as the file appears).
#   2. One rank of a 2-rank stage under pipeline/run-chain.sh killed with
#      kill -9 (the rank's process, not mpirun): the chain exits non-zero
#      within 60 s, the stage has no DONE, no later stage has a file; the same
#      command then finishes the chain.
#   3. A full file system during a checkpoint write (a tmpfs sized for two
#      checkpoints; needs root and mount, else SKIPPED): the error names the
#      file and says "No space", exit 1, the previous checkpoints stay valid,
#      and once space is freed the stage resumes from them and ends with the
#      uninterrupted run's tensors.
# Seed: CTMQ_FAULT_SEED (default: from the clock; printed). About 2-3 minutes
# on 2 cores. Env: CTMQ_BIN_DIR, CTMQ_SOURCE_DIR, CTMQ_FASHION_MNIST_DIR.
set -euo pipefail
test_name=fault_injection
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
require_bins ctmq-shard ctmq-train ctmq-eval ctmq-plan
export OMPI_MCA_rmaps_base_oversubscribe=1
background=() mounted=''
# kill_tree PID: kill -9 PID and its descendants (processes this script started).
kill_tree() {
  local child
  for child in $(pgrep -P "$1" || true); do kill_tree "$child"; done
  kill -9 "$1" 2>/dev/null || true
}
stop_background() {
  local pid
  for pid in "${background[@]}"; do kill_tree "$pid"; done
  sleep 0.2
  [[ -z $mounted ]] || umount "$mounted" 2>/dev/null || true
}
on_exit stop_background
now_ms() { echo $(($(date +%s%N) / 1000000)); }

seed=${CTMQ_FAULT_SEED:-$(($(date +%s) % 1000000))}
echo "fault_injection: seed $seed (rerun with CTMQ_FAULT_SEED=$seed)"
RANDOM=$seed

shard_fashion_mnist "$tmp/shards"
write_run_ini "$tmp/run.ini" "$tmp/shards" data.train-limit=640 data.test-limit=300 \
  model.width=8 train.seed=11 train.checkpoint-every=2 train.log-every=4 eval.batch= eval.threads=
stage=c0-fp
train() {  # train RUN_DIR: the stage, in the foreground
  "$bin/ctmq-train" --config "$tmp/run.ini" --run-dir "$1" --stage "$stage" --epochs 3
}
# poll_kill.py DIR FRAGMENT LOG CMD...: runs CMD, polls DIR (and its
# subdirectories) and kill -9s CMD as soon as a file whose name holds FRAGMENT
# (is FRAGMENT without its leading '=') appears; prints "hit FILE" or "missed".
cat >"$tmp/poll_kill.py" <<'PY'
import os, signal, subprocess, sys
directory, fragment, log = sys.argv[1], sys.argv[2], sys.argv[3]
with open(log, "ab") as out:
    child = subprocess.Popen(sys.argv[4:], stdout=out, stderr=out)
    while child.poll() is None:
        for root, _, files in os.walk(directory):
            hit = next((f for f in files if (f == fragment[1:] if fragment.startswith("=")
                                             else fragment in f)), None)
            if hit is not None:
                child.send_signal(signal.SIGKILL)
                child.wait()
                print("hit", hit)
                sys.exit(0)
print("missed")
PY

# --- 0. the uninterrupted reference -----------------------------------------
t0=$(now_ms)
train "$tmp/ref" >"$tmp/ref.log" 2>&1 || { cat "$tmp/ref.log"; fail "reference run"; }
run_ms=$(($(now_ms) - t0))
reference=$tmp/ref/stages/$stage/final.pt
[[ -f $reference && -f $tmp/ref/stages/$stage/DONE ]] || fail "reference run has no final.pt/DONE"
steps=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["global_step"])' "$tmp/ref/stages/$stage/DONE")
ckpt_bytes=$(find "$tmp/ref/stages/$stage/checkpoints" -name 'step-*.pt' -printf '%s\n' | head -1)
echo "reference: $steps steps in $run_ms ms, checkpoints of $ckpt_bytes bytes"
# A second clean run must give the same tensors, else the comparisons below prove nothing.
t0=$(now_ms)
train "$tmp/ref2" >"$tmp/ref2.log" 2>&1 || fail "second reference run"
run_ms=$(( $(now_ms) - t0 < run_ms ? $(now_ms) - t0 : run_ms ))  # the less loaded of the two
same_tensors "$reference" "$tmp/ref2/stages/$stage/final.pt" || fail "two clean runs differ: training is not deterministic"
# ... and a shorter run must differ, else the comparison could not fail.
"$bin/ctmq-train" --config "$tmp/run.ini" --run-dir "$tmp/short" --stage "$stage" --epochs 2 >"$tmp/short.log" 2>&1 ||
  fail "short run"
if same_tensors "$reference" "$tmp/short/stages/$stage/final.pt" 2>/dev/null; then
  fail "a 2-epoch run has the 3-epoch run's tensors: the comparison cannot fail"
fi

# tmp_files RUN_DIR: how many temporary files of atomic writes the stage holds.
tmp_files() { if [[ -d $1 ]]; then find "$1" -name '*.tmp.*' | wc -l; else echo 0; fi; }
# where_killed RUN_DIR TMP_BEFORE: where in the stage's life a kill landed
# (TMP_BEFORE: tmp_files before the killed run, left by earlier kills).
where_killed() {
  local d=$1/stages/$stage new_tmp=$(($(tmp_files "$1") > $2))
  if [[ -f $d/DONE ]]; then echo "after-DONE"
  elif ((new_tmp)) && compgen -G "$d/final.pt.tmp.*" >/dev/null; then echo "during-final-write"
  elif [[ -f $d/final.pt ]]; then echo "after-final-before-DONE"
  elif ((new_tmp)) && compgen -G "$d/checkpoints/*.tmp.*" >/dev/null; then echo "during-checkpoint-write"
  elif compgen -G "$d/checkpoints/step-*.pt" >/dev/null; then echo "between-checkpoints"
  else echo "before-first-checkpoint"
  fi
}
declare -A landed=()
kills=0
# finish_and_check RUN_DIR LABEL: reruns the stage to the end; exit 0, DONE,
# and the reference's tensors.
finish_and_check() {
  local run=$1 label=$2 had_checkpoint=0
  [[ -z $(pgrep -f -- "--run-dir $run --stage" || true) ]] || fail "$label: a killed ctmq-train is still running"
  compgen -G "$run/stages/$stage/checkpoints/step-*.pt" >/dev/null && had_checkpoint=1
  train "$run" >"$tmp/finish.log" 2>&1 || { cat "$tmp/finish.log"; fail "$label: the rerun after the kill failed"; }
  cp "$tmp/finish.log" "$tmp/finish-$(basename "$run").log"
  [[ -f $run/stages/$stage/DONE ]] || fail "$label: no DONE after the rerun"
  if ((had_checkpoint)); then
    grep -q "resuming at step\|already DONE" "$tmp/finish.log" || { cat "$tmp/finish.log"; fail "$label: a checkpoint existed but the rerun did not resume"; }
  fi
  same_tensors "$reference" "$run/stages/$stage/final.pt" || fail "$label: final.pt differs from the uninterrupted run"
}

# --- 1a. kill -9 at seeded random points -------------------------------------
# At least 10 trials, and more (up to 30) until 12 kills have landed while
# ctmq-train ran (a delay past the end of a run on a fast moment kills nothing).
echo "== 1. kill -9 at random points: delays 0..$((run_ms * 11 / 10)) ms, 1-2 kills per trial"
for ((t = 1; t <= 10 || (kills < 12 && t <= 30); ++t)); do
  run=$tmp/kill-$t
  n=$((1 + RANDOM % 2))
  where=()
  for ((k = 1; k <= n; ++k)); do
    delay=$((RANDOM * 32768 + RANDOM))
    delay=$((delay % (run_ms * 11 / 10)))
    before=$(tmp_files "$run")
    # The executable itself in the background (not the train function: $!
    # would be a subshell, and killing it would leave ctmq-train running).
    "$bin/ctmq-train" --config "$tmp/run.ini" --run-dir "$run" --stage "$stage" --epochs 3 >>"$tmp/kill-$t.log" 2>&1 &
    pid=$!
    background+=("$pid")
    sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
    kill -9 "$pid" 2>/dev/null || true
    rc=0
    { wait "$pid"; } 2>/dev/null || rc=$?
    if ((rc == 137)); then
      w=$(where_killed "$run" "$before")
      kills=$((kills + 1))
    elif ((rc == 0)); then
      w="after-exit"
    else
      cat "$tmp/kill-$t.log"
      fail "trial $t: ctmq-train exited $rc before the kill"
    fi
    landed[$w]=$((${landed[$w]:-0} + 1))
    where+=("$w@${delay}ms")
  done
  finish_and_check "$run" "trial $t"
  echo "   trial $t: ${where[*]} -> resumed, tensors identical"
done

# --- 1b. kills aimed at the dangerous moments --------------------------------
echo "== 1b. kills aimed at a checkpoint write, the final.pt write, DONE"
aim() {  # aim LABEL DIR_SUFFIX FRAGMENT: up to 5 tries to kill when FRAGMENT appears
  local label=$1 fragment=$3 try result run
  for ((try = 1; try <= 5; ++try)); do
    run=$tmp/aim-$label-$try
    mkdir -p "$run/stages/$stage/$2"
    result=$(python3 "$tmp/poll_kill.py" "$run/stages/$stage/$2" "$fragment" "$tmp/aim.log" \
      "$bin/ctmq-train" --config "$tmp/run.ini" --run-dir "$run" --stage "$stage" --epochs 3)
    if [[ $result == hit* ]]; then
      kills=$((kills + 1))
      w=$(where_killed "$run" 0)
      landed[$w]=$((${landed[$w]:-0} + 1))
      finish_and_check "$run" "$label"
      echo "   $label: killed on '${result#hit }' (state: $w, try $try) -> resumed, tensors identical"
      return 0
    fi
  done
  echo "   $label: the poller never saw '$fragment' in 5 tries (not counted)"
  missed_aims=$((missed_aims + 1))
}
missed_aims=0
aim checkpoint-write checkpoints .tmp.
aim final-write "" final.pt.tmp.
aim done-write "" DONE.tmp.
aim after-done "" =DONE
# After final.pt is committed and before DONE (a window too short to aim at):
# the state is made by removing DONE from a finished stage.
run=$tmp/no-done
cp -r "$tmp/ref2" "$run"
rm "$run/stages/$stage/DONE"
finish_and_check "$run" "final.pt without DONE"
landed[after-final-before-DONE]=$((${landed[after-final-before-DONE]:-0} + 1))
echo "   final.pt committed, DONE missing -> rerun resumed, DONE written, tensors identical"
((missed_aims <= 1)) || fail "$missed_aims of the 4 aimed kills never found their moment"
leftovers=$(find "$tmp"/kill-* "$tmp"/aim-* -name '*.tmp.*' | wc -l)
echo "kills survived: $kills; where: $(for w in "${!landed[@]}"; do printf '%s=%s ' "$w" "${landed[$w]}"; done)"
echo "temporary files left behind by killed writes (never read, not removed): $leftovers"
takeovers=$(cat "$tmp"/kill-*.log "$tmp"/finish-*.log "$tmp/aim.log" | grep -c "stale stage lock" || true)
echo "stale stage locks of killed runs taken over by the next run: $takeovers"
((kills >= 10)) || fail "only $kills kills landed while ctmq-train ran (need >= 10)"

# --- 2. one rank of two killed under run-chain.sh ----------------------------
echo "== 2. kill -9 of one rank of a 2-rank chain stage"
cat "$tmp/run.ini" - >"$tmp/chain.ini" <<INI
[plan]
k-start = 1
k-target = 1
cycles = 1
epochs-pretrain = 12
epochs-step = 1
baselines = false
INI
chain=$tmp/chain
bash "$src/pipeline/run-chain.sh" "$tmp/chain.ini" "$chain" --ranks 2 >"$tmp/chain.log" 2>&1 &
chain_pid=$!
background+=("$chain_pid")
rank_pid=''
for ((i = 0; i < 600; ++i)); do  # until c0-fp has a checkpoint: both ranks are training
  if compgen -G "$chain/stages/c0-fp/checkpoints/step-*.pt" >/dev/null; then
    rank_pid=$(pgrep -f -- "^$bin/ctmq-train --config $chain/config.ini" | sort -n | tail -1 || true)
    [[ -n $rank_pid ]] && break
  fi
  kill -0 "$chain_pid" 2>/dev/null || { cat "$tmp/chain.log"; fail "the chain ended before c0-fp wrote a checkpoint"; }
  sleep 0.1
done
[[ -n $rank_pid ]] || fail "no ctmq-train rank process found"
ranks_before=$(pgrep -f -- "^$bin/ctmq-train --config $chain/config.ini" | wc -l)
((ranks_before == 2)) || fail "expected 2 rank processes, found $ranks_before"
t0=$(now_ms)
kill -9 "$rank_pid"
rc=0
for ((i = 0; i < 900; ++i)); do kill -0 "$chain_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$chain_pid" 2>/dev/null && fail "run-chain.sh still running 90 s after a rank was killed"
wait "$chain_pid" || rc=$?
took=$(($(now_ms) - t0))
((rc != 0)) || fail "run-chain.sh exited 0 after a rank was killed"
((took < 60000)) || fail "run-chain.sh took $took ms to fail (limit 60 s)"
[[ ! -e $chain/stages/c0-fp/DONE ]] || fail "c0-fp has DONE after a rank was killed"
[[ -z $(find "$chain/stages" -mindepth 1 -maxdepth 1 ! -name c0-fp) ]] ||
  fail "a later stage directory exists: $(ls "$chain/stages")"
[[ -z $(pgrep -f -- "^$bin/ctmq-train --config $chain/config.ini" || true) ]] || fail "a rank outlived the chain"
grep -q "stage c0-fp failed in training" "$tmp/chain.log" || { cat "$tmp/chain.log"; fail "the chain's error does not name c0-fp"; }
echo "   rank pid $rank_pid killed: run-chain.sh exited $rc after $took ms, no DONE, no later stage"
bash "$src/pipeline/run-chain.sh" "$tmp/chain.ini" "$chain" --ranks 2 >"$tmp/chain2.log" 2>&1 ||
  { cat "$tmp/chain2.log"; tail -n 20 "$chain/logs/c0-fp.train.log"; fail "the chain did not finish when run again"; }
grep -q "resuming at step" "$chain/logs/c0-fp.train.log" || fail "the rerun did not resume c0-fp from its checkpoint"
[[ -f $chain/stages/c1-w1a1/DONE ]] || fail "the rerun did not finish the chain"
echo "   the same command again: resumed c0-fp from its checkpoint, chain DONE"

# --- 3. the file system fills up during a checkpoint write -------------------
echo "== 3. no space left during a checkpoint write (tmpfs)"
full=$tmp/full
mkdir -p "$full"
# Room for two checkpoints and the small files, not for the third write.
size_kib=$(((ckpt_bytes * 5 / 2 + 32768) / 1024))
if [[ $(id -u) != 0 ]]; then
  echo "   SKIPPED: not root, cannot mount a tmpfs"
elif ! mount -t tmpfs -o "size=${size_kib}k" tmpfs "$full" 2>"$tmp/mount.err"; then
  echo "   SKIPPED: mount -t tmpfs refused: $(cat "$tmp/mount.err")"
else
  mounted=$full
  rc=0
  train "$full/run" >"$tmp/full.log" 2>&1 || rc=$?
  ((rc == 1)) || { cat "$tmp/full.log"; fail "a full file system: exit $rc, expected 1"; }
  grep -q "error: .*checkpoints/step-[0-9]*\.pt.*No space left on device" "$tmp/full.log" ||
    { cat "$tmp/full.log"; fail "the error does not name the checkpoint and 'No space left on device'"; }
  [[ ! -e $full/run/stages/$stage/DONE && ! -e $full/run/stages/$stage/final.pt ]] || fail "DONE or final.pt on a full disk"
  [[ -z $(find "$full/run" -name '*.tmp.*') ]] || fail "the failed write left its temporary file"
  kept=$(compgen -G "$full/run/stages/$stage/checkpoints/step-*.pt" | wc -l)
  ((kept >= 1)) || fail "no checkpoint survived the failed write"
  echo "   $(grep -o 'error: .*' "$tmp/full.log" | head -1)"
  mount -o remount,size=64m "$full"
  train "$full/run" >"$tmp/full2.log" 2>&1 || { cat "$tmp/full2.log"; fail "rerun after freeing space"; }
  grep -q "resuming at step" "$tmp/full2.log" || { cat "$tmp/full2.log"; fail "the rerun did not resume from the kept checkpoint"; }
  grep -q "falling back" "$tmp/full2.log" && fail "a kept checkpoint was corrupt"
  same_tensors "$reference" "$full/run/stages/$stage/final.pt" || fail "after ENOSPC: final.pt differs from the uninterrupted run"
  echo "   exit 1, $kept checkpoint(s) kept intact; after remount: $(grep -o 'resuming at step [0-9]*' "$tmp/full2.log"), tensors identical"
  umount "$full"
  mounted=''
fi
echo "fault_injection: PASS (seed $seed)"
