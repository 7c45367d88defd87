#!/usr/bin/env bash
# Two nodes x two ranks on a simulated Slurm cluster: two slurmd on this host
# (slurm/testing/local-slurm.sh: nodes ctmq-n1 and ctmq-n2, each with two fake
# GPUs declared as GRES), Open MPI between the nodes over TCP. The ranks train
# on the CPU (there is no GPU); what is checked is where they run, what Slurm
# hands them, and what happens when one of them fails.
#   1. Placement under srun --mpi=pmix with each GPU binding (none,
#      --gpus-per-task=1, --gpu-bind=single:1, map_gpu): every rank's
#      placement line names its Slurm node, its node rank (MPI's shared-memory
#      split) and the CUDA_VISIBLE_DEVICES the binding gave it. Then under
#      mpirun inside a 2-node allocation, where SLURM_LOCALID is 0 on every
#      rank: the node ranks still come out 0 and 1 on each node, and a
#      variable given with mpirun -x reaches every rank.
#   2. Preemption and resume: a stage on 2 x 2 preempted after its first
#      checkpoint exits 75; resumed on 2 x 2 it ends with the tensors of an
#      uninterrupted 2 x 2 run, bit for bit; the same checkpoint resumed on
#      1 node x 1 rank completes, with the rank-count warning.
#   3. A hung rank (SIGSTOP on rank 3): the other ranks end within the
#      collective timeout with exit 69, naming themselves and the collective;
#      the step ends.
#   4. A killed rank (SIGKILL on rank 3): the step ends within seconds, srun
#      naming task 3.
#   5. A chain through slurm/submit.sh on 2 nodes x 2 ranks (LAUNCHER=mpirun,
#      EXPORT_ENV) completes; every rank's placement line shows the exported
#      NCCL variable.
set -euo pipefail
test_name=cluster_two_nodes
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
require_bins ctmq-train ctmq-eval ctmq-plan
start_local_slurm 2 2
# The simulated nodes share this host's interfaces: MPI between them over
# loopback (a real cluster names its fabric in MPIRUN_OPTIONS or EXPORT_ENV).
export OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo
shard_fashion_mnist "$tmp/shards"
write_run_ini "$tmp/run.ini" "$tmp/shards" data.train-limit=256 data.test-limit=300 \
  train.log-every=2 train.checkpoint-every=2 train.collective-timeout=60
ranks=(--mpi=pmix -N 2 --ntasks-per-node=2 -c 1 --kill-on-bad-exit=1)
# train RUN_DIR EPOCHS [ctmq-train options]: stage c0-fp of RUN_DIR (a
# script, so that srun can start it on every rank).
cat >"$tmp/train" <<SH
#!/usr/bin/env bash
run=\$1 epochs=\$2
shift 2
exec "$bin/ctmq-train" --config "$tmp/run.ini" --run-dir "\$run" --stage c0-fp --epochs "\$epochs" "\$@"
SH
chmod +x "$tmp/train"
train="$tmp/train"

# check_placement LOG WHAT EXPECTED...: LOG has one placement line per rank
# 0..3, rank r on Slurm node ctmq-n(r/2+1) with node rank r%2 of 2 and
# CUDA_VISIBLE_DEVICES=EXPECTED[r] ("-": not checked).
check_placement() {
  local log=$1 what=$2
  shift 2
  local expected=("$@") r line node
  for r in 0 1 2 3; do
    line=$(grep -o "placement: rank $r of 4 .*" "$log" | head -1) ||
      { cat "$log" >&2; fail "$what: no placement line for rank $r"; }
    node=ctmq-n$((r / 2 + 1))
    [[ $line == *"(Slurm node $node), node rank $((r % 2)) of 2, device cpu"* ]] ||
      fail "$what: rank $r: expected node $node, node rank $((r % 2)) of 2; got: $line"
    if [[ ${expected[r]} != - && $line != *"CUDA_VISIBLE_DEVICES=${expected[r]}"* ]]; then
      fail "$what: rank $r: expected CUDA_VISIBLE_DEVICES=${expected[r]}; got: $line"
    fi
  done
  echo "   $what: $(grep -o 'placement: rank [0-9] .*' "$log" | sort | sed 's/.*(Slurm node \(ctmq-n[0-9]\)), node rank \([0-9]\).*CUDA_VISIBLE_DEVICES=\([^,]*\(,[0-9]\)*\).*/\1:\2:\3/' | tr '\n' ' ')"
}

echo "== 1. placement under srun with each GPU binding"
declare -A binding=(
  [none]="--gres=gpu:2"
  [gpus-per-task]="--gpus-per-task=1"
  [single]="--gres=gpu:2 --gpu-bind=single:1"
  [map_gpu]="--gres=gpu:2 --gpu-bind=map_gpu:1,0"
)
declare -A visible=(
  [none]="0,1 0,1 0,1 0,1"
  [gpus-per-task]="0 1 0 1"
  [single]="0 1 0 1"
  [map_gpu]="1 0 1 0"
)
for name in none gpus-per-task single map_gpu; do
  read -ra extra <<<"${binding[$name]}"
  read -ra want <<<"${visible[$name]}"
  srun "${ranks[@]}" "${extra[@]}" "$train" "$tmp/bind-$name" 1 >"$tmp/bind-$name.log" 2>&1 ||
    { tail -n 30 "$tmp/bind-$name.log" >&2; fail "srun ${binding[$name]}: training failed"; }
  [[ -f $tmp/bind-$name/stages/c0-fp/DONE ]] || fail "srun ${binding[$name]}: stage not DONE"
  check_placement "$tmp/bind-$name.log" "srun ${binding[$name]}" "${want[@]}"
done
grep -q "replicas differ" "$tmp"/bind-*.log && fail "a replica check failed"

echo "== 1b. mpirun inside a 2-node allocation"
cat >"$tmp/mpirun-job.sh" <<SH
#!/usr/bin/env bash
export CTMQ_PROBE_VARIABLE=forwarded NCCL_SOCKET_IFNAME=lo
mpirun -n 4 --bind-to none -x CTMQ_PROBE_VARIABLE -x NCCL_SOCKET_IFNAME \
  bash -c 'echo "rank \$OMPI_COMM_WORLD_RANK SLURM_LOCALID=\${SLURM_LOCALID:-unset} probe=\$CTMQ_PROBE_VARIABLE"; exec "\$@"' _ \
  "$bin/ctmq-train" --config "$tmp/run.ini" --run-dir "$tmp/mpirun" --stage c0-fp --epochs 1
SH
sbatch --parsable -N 2 --ntasks-per-node=2 -c 1 --output="$tmp/mpirun.log" "$tmp/mpirun-job.sh" >/dev/null ||
  fail "sbatch of the mpirun job"
wait_idle 120
[[ -f $tmp/mpirun/stages/c0-fp/DONE ]] || { tail -n 30 "$tmp/mpirun.log" >&2; fail "mpirun: stage not DONE"; }
check_placement "$tmp/mpirun.log" "mpirun" - - - -
[[ $(grep -c "probe=forwarded" "$tmp/mpirun.log") == 4 ]] || fail "mpirun -x did not reach every rank"
[[ $(grep -c "placement: .*NCCL_SOCKET_IFNAME=lo" "$tmp/mpirun.log") == 4 ]] ||
  fail "the placement lines do not show NCCL_SOCKET_IFNAME"
echo "   SLURM_LOCALID seen by the ranks: $(grep -o 'SLURM_LOCALID=[0-9a-z]*' "$tmp/mpirun.log" | sort | uniq -c | tr -s ' ' | tr '\n' ' ')"

echo "== 2. preempted on 2 x 2, resumed on 2 x 2 and on 1 x 1"
srun "${ranks[@]}" "$train" "$tmp/whole" 1 >"$tmp/whole.log" 2>&1 ||
  { tail -n 30 "$tmp/whole.log" >&2; fail "uninterrupted 2 x 2 run failed"; }
rc=0
CTMQ_TEST_SIGNAL_AT=checkpoint-write srun "${ranks[@]}" "$train" "$tmp/cut" 1 >"$tmp/cut.log" 2>&1 ||
  rc=$?
((rc == 75)) || { tail -n 30 "$tmp/cut.log" >&2; fail "preempted 2 x 2 run: exit $rc, expected 75"; }
[[ ! -f $tmp/cut/stages/c0-fp/DONE ]] || fail "a preempted stage is DONE"
cp -a "$tmp/cut" "$tmp/cut-1x1"
srun "${ranks[@]}" "$train" "$tmp/cut" 1 >>"$tmp/cut.log" 2>&1 ||
  { tail -n 30 "$tmp/cut.log" >&2; fail "resume on 2 x 2 failed"; }
grep -q "resuming at step" "$tmp/cut.log" || fail "the 2 x 2 rerun did not resume"
same_tensors "$tmp/whole/stages/c0-fp/final.pt" "$tmp/cut/stages/c0-fp/final.pt" ||
  fail "preempted and resumed on 2 x 2 differs from the uninterrupted 2 x 2 run"
"$train" "$tmp/cut-1x1" 1 >"$tmp/cut-1x1.log" 2>&1 ||
  { tail -n 30 "$tmp/cut-1x1.log" >&2; fail "resume on 1 x 1 failed"; }
grep -q "written by 4 ranks, resuming on 1" "$tmp/cut-1x1.log" ||
  fail "resuming on 1 rank did not warn about the rank count"
[[ -f $tmp/cut-1x1/stages/c0-fp/DONE ]] || fail "the 1 x 1 resume is not DONE"
echo "   exit 75 at $(grep -o 'preempted at step [0-9]*' "$tmp/cut.log" | head -1); resumed on 2 x 2: tensors identical; on 1 x 1: DONE"

# run_and_fault SIGNAL LOG: a long stage on 2 x 2 (the whole training set);
# once it has logged a step, SIGNAL goes to rank 3. Sets `took` (seconds from
# the signal to the end of srun) and `rc` (srun's exit status).
run_and_fault() {
  local signal=$1 log=$2 start pid='' candidate i
  srun "${ranks[@]}" "$train" "$tmp/long-$signal" 3 --collective-timeout 10 >"$log" 2>&1 &
  local job=$!
  for ((i = 0; i < 300; ++i)); do
    [[ -s $tmp/long-$signal/stages/c0-fp/metrics.jsonl ]] && break
    sleep 0.2
  done
  for candidate in $(pgrep -f "ctmq-train --config $tmp/run.ini --run-dir $tmp/long-$signal "); do
    if tr '\0' '\n' <"/proc/$candidate/environ" 2>/dev/null | grep -qx "SLURM_PROCID=3"; then
      pid=$candidate
    fi
  done
  [[ -n $pid ]] || { kill "$job" 2>/dev/null; cat "$log" >&2; fail "rank 3 of the $signal run not found"; }
  start=$(date +%s)
  kill "-$signal" "$pid"
  rc=0
  wait "$job" || rc=$?
  took=$(($(date +%s) - start))
}

echo "== 3. a hung rank (SIGSTOP on rank 3)"
write_run_ini "$tmp/run.ini" "$tmp/shards" data.train-limit=0 train.log-every=1 train.checkpoint-every=0
run_and_fault STOP "$tmp/hung.log"
((rc != 0)) || fail "a hung rank left exit 0"
((took <= 60)) || fail "the step took $took s to end after rank 3 hung (collective timeout 10 s)"
grep -q "has not completed after 1[0-9]\.[0-9] s (\[train\] collective-timeout = 10 s)" "$tmp/hung.log" ||
  { tail -n 30 "$tmp/hung.log" >&2; fail "no rank said its collective timed out"; }
echo "   ended $took s after the hang, exit $rc: $(grep -o 'rank [0-9] on [^:]*: MPI [^(]*' "$tmp/hung.log" | head -1)"

echo "== 4. a killed rank (SIGKILL on rank 3)"
run_and_fault KILL "$tmp/killed.log"
((rc != 0)) || fail "a killed rank left exit 0"
((took <= 30)) || fail "the step took $took s to end after rank 3 was killed"
grep -q "task 3: Killed" "$tmp/killed.log" || { tail -n 30 "$tmp/killed.log" >&2; fail "srun did not name task 3"; }
echo "   ended $took s after the kill, exit $rc: $(grep -o 'ctmq-n2: task 3: Killed' "$tmp/killed.log" | head -1)"

echo "== 5. a chain through slurm/submit.sh on 2 nodes x 2 ranks"
sed -e 's/^LAUNCHER=.*/LAUNCHER="mpirun"/' -e 's/^NODES=.*/NODES=2/' -e 's/^TASKS_PER_NODE=.*/TASKS_PER_NODE=2/' \
  -e 's/^CPUS_PER_TASK=.*/CPUS_PER_TASK=1/' -e 's/^TIME_TRAIN=.*/TIME_TRAIN="00:10:00"/' \
  -e 's/^TIME_EVAL=.*/TIME_EVAL="00:05:00"/' \
  -e 's/^EXPORT_ENV=.*/EXPORT_ENV="NCCL_SOCKET_IFNAME=lo NCCL_DEBUG=WARN OMPI_MCA_btl_tcp_if_include"/' \
  "$src/slurm/site.conf" >"$tmp/site.conf"
write_two_stage_config "$tmp/chain.ini" "$tmp/shards"
bash "$src/slurm/submit.sh" "$tmp/chain.ini" "$tmp/chain" --site "$tmp/site.conf" >"$tmp/submit.log" 2>&1 ||
  { cat "$tmp/submit.log" >&2; fail "submit.sh failed"; }
wait_idle 300
for s in c0-fp c1-w1a1; do
  [[ -f $tmp/chain/stages/$s/DONE && -f $tmp/chain/stages/$s/eval.json ]] ||
    { tail -n 30 "$tmp/chain/logs/$s".*.log >&2 || true; fail "chain stage $s not DONE and evaluated"; }
  [[ $(grep -c "placement: rank [0-3] of 4 .*NCCL_DEBUG=WARN" "$tmp/chain/logs/$s.train.log") == 4 ]] ||
    fail "stage $s: not every rank's placement line shows EXPORT_ENV's NCCL_DEBUG"
done
check_placement "$tmp/chain/logs/c1-w1a1.train.log" "submit.sh chain, mpirun" - - - -
echo "cluster_two_nodes: OK"
