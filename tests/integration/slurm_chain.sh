#!/usr/bin/env bash
# slurm/submit.sh against a real Slurm started on this machine
# (slurm/testing/local-slurm.sh: munged, slurmctld, slurmd under a temp dir,
# stopped by pid files on exit). Needs root and Debian's slurm/munge packages;
# fails loudly without them.
#   0. CPU binding (the local Slurm runs task/affinity): a job step started by
#      srun after the job prologue gets every CPU sbatch gave the task.
#   1. A tiny chain (2 cycles, 2 -> 1 bits, 256 Fashion-MNIST training images)
#      with the manifests missing: sharding is submitted first (job array +
#      merge), then one job per stage that trains and evaluates it (launcher
#      srun); every stage ends DONE with its eval.json; RUN/slurm-jobs.tsv
#      records every job.
#   2. Bad input before anything is submitted: unknown --from, a missing prior
#      checkpoint, a run directory with another plan; --dry-run submits nothing.
#   3. A second chain (launcher mpirun): while it runs, submitting it again is
#      refused (its stages have live jobs); it is cancelled mid-way (scancel,
#      which never requeues) and resubmitted with the same command: finished
#      stages are not run again, and a DONE stage whose eval.json is gone gets
#      a one-rank evaluation job.
#   4. Preemption: USR1 sent to a training job's batch shell (what
#      --signal=B:USR1@T does) reaches ctmq-train, which checkpoints and exits
#      75; with REQUEUE=true the job requeues itself, resumes from the
#      checkpoint, and the chain completes without resubmission.
set -euo pipefail
test_name=slurm_chain
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
start_local_slurm 1

site() {  # site FILE LAUNCHER
  sed -e "s/^LAUNCHER=.*/LAUNCHER=\"$2\"/" -e 's/^CPUS_PER_TASK=.*/CPUS_PER_TASK=1/' \
    -e 's/^TIME_TRAIN=.*/TIME_TRAIN="00:10:00"/' -e 's/^TIME_EVAL=.*/TIME_EVAL="00:05:00"/' \
    -e 's/^SHARD_TASKS=.*/SHARD_TASKS=2/' -e 's/^SIGNAL_SECONDS=.*/SIGNAL_SECONDS=30/' \
    "$src/slurm/site.conf" >"$1"
}
site "$tmp/site-srun.conf" srun
site "$tmp/site-mpirun.conf" mpirun
write_run_ini "$tmp/run.ini" "$tmp/shards" data.train-limit=256 data.test-limit=300 model.arch= \
  model.width=8 train.batch=64 train.log-every=2 train.checkpoint-every=2 eval.threads= \
  plan.k-start=2 plan.k-target=1 plan.cycles=2 plan.epochs-pretrain=1 plan.epochs-step=1 \
  plan.epochs-accurate=1 plan.baselines=false slurm.data-prep=data-prep/fashion-mnist.sh
stages=(c0-fp c1-w2a2 c1-w1a1 c2-fp c2-w2a2 c2-w1a1)
submit() { bash "$src/slurm/submit.sh" "$@"; }

echo "== 0. srun inside a job gets the job's CPUs per task (task/affinity)"
ncpu=$(sinfo -h -N -o %c | head -1)  # the node's CPUs (nproc follows OMP_NUM_THREADS)
if ((ncpu >= 2)); then
  cat >"$tmp/bind.sh" <<SH
#!/usr/bin/env bash
source "$src/slurm/job-prologue.sh"
ctmq_job_prologue "" "binding check"
srun -n 1 grep Cpus_allowed_list /proc/self/status
SH
  sbatch --parsable --cpus-per-task=2 --output="$tmp/bind.out" "$tmp/bind.sh" >/dev/null ||
    fail "sbatch of the binding job"
  wait_idle 60
  allowed=$(awk '/Cpus_allowed_list/ { print $2 }' "$tmp/bind.out")
  cpus=$(awk -v l="$allowed" 'BEGIN { n = split(l, r, ","); c = 0
    for (i = 1; i <= n; ++i) { k = split(r[i], b, "-"); c += (k == 2 ? b[2] - b[1] + 1 : 1) } print c }')
  [[ $cpus == 2 ]] || { cat "$tmp/bind.out"; fail "srun in a --cpus-per-task=2 job was bound to '$allowed' ($cpus CPUs)"; }
  echo "   srun step bound to CPUs $allowed"
else
  echo "   skipped: one CPU"
fi

echo "== 1. a tiny chain, sharding first"
run=$tmp/run1
submit "$tmp/run.ini" "$run" --site "$tmp/site-srun.conf" >"$tmp/submit1" 2>&1 ||
  { cat "$tmp/submit1"; fail "submit failed"; }
grep -q "submitted sharding" "$tmp/submit1" || { cat "$tmp/submit1"; fail "sharding was not submitted"; }
wait_idle 240
[[ -f $tmp/shards/train/manifest.json && -f $tmp/shards/test/manifest.json ]] || fail "sharding jobs made no manifests"
for s in "${stages[@]}"; do
  [[ -f $run/stages/$s/DONE ]] || { tail -n 20 "$run/logs/$s".*.log >&2 || true; fail "stage $s not DONE"; }
  python3 -c 'import json,sys; e=json.load(open(sys.argv[1])); assert e["samples"] == 300 and e["stage"] == sys.argv[2] and 0 <= e["top1"] <= 100, e' \
    "$run/stages/$s/eval.json" "$s" || fail "eval.json of $s"
  grep -q "ctmq-train job" "$run/logs/$s.train.log" || fail "no Slurm train log for $s"
  grep -q "^$s"$'\t'"train"$'\t' "$run/slurm-jobs.tsv" || fail "RUN/slurm-jobs.tsv does not record $s's job"
done
[[ $(grep -c $'\tshard\t' "$run/slurm-jobs.tsv") == 2 ]] || fail "RUN/slurm-jobs.tsv does not record the 2 merge jobs of the sharding"
# ctmq-status: every stage evaluated, with its recorded job (squeue asked, sacct absent here).
"$bin/ctmq-status" "$run" --format tsv >"$tmp/status1" || fail "ctmq-status on a finished chain"
awk -F'\t' -v jobs="$run/slurm-jobs.tsv" 'BEGIN { while ((getline l < jobs) > 0) { split(l, f, "\t"); if (f[2] == "train") id[f[1]] = f[3] } }
  NR > 1 { if ($5 != "evaluated" || $12 != id[$1]) { print "bad row: " $0; bad = 1 } ++rows }
  END { exit bad || rows != 6 }' "$tmp/status1" || { cat "$tmp/status1"; fail "ctmq-status: not 6 evaluated stages with their jobs"; }

echo "== 2. bad input is refused before anything is submitted"
expect_submit_refused() {  # expect_submit_refused PATTERN ARGS...
  local pattern=$1
  shift
  if submit "$@" >"$tmp/err" 2>&1; then fail "submit $* succeeded"; fi
  grep -q "$pattern" "$tmp/err" || { cat "$tmp/err"; fail "submit $*: no '$pattern' in the error"; }
  [[ -z $(squeue -h -o %i) ]] || fail "submit $* submitted a job"
}
expect_submit_refused "no such stage" "$tmp/run.ini" "$tmp/bad" --from c7-w7a7 --site "$tmp/site-srun.conf"
expect_submit_refused "final.pt is missing" "$tmp/run.ini" "$tmp/bad" --from c2-w2a2 --site "$tmp/site-srun.conf"
[[ ! -e $tmp/bad ]] || fail "a refused submission created its run directory"
sed 's/^cycles = 2/cycles = 3/' "$tmp/run.ini" >"$tmp/other.ini"
expect_submit_refused "different" "$tmp/other.ini" "$run" --site "$tmp/site-srun.conf"
submit "$tmp/run.ini" "$tmp/dry" --dry-run --site "$tmp/site-srun.conf" >"$tmp/dry.out" 2>&1 || fail "dry run failed"
[[ $(grep -c '^sbatch .*train.sbatch' "$tmp/dry.out") == 6 && $(grep -c '^sbatch .*eval.sbatch' "$tmp/dry.out") == 0 ]] ||
  { cat "$tmp/dry.out"; fail "dry run does not print 6 sbatch lines of train.sbatch (which also evaluates)"; }
grep -q -- "--dependency=afterok:JOB1 .*c1-w2a2" "$tmp/dry.out" || fail "c1-w2a2 does not wait for c0-fp"
[[ -z $(squeue -h -o %i) && ! -e $tmp/dry ]] || fail "dry run submitted or created something"

echo "== 3. cancel mid-way, resubmit: finished stages are not run again"
run=$tmp/run2
submit "$tmp/run.ini" "$run" --site "$tmp/site-mpirun.conf" >"$tmp/submit2" 2>&1 || { cat "$tmp/submit2"; fail "submit 2 failed"; }
if submit "$tmp/run.ini" "$run" --site "$tmp/site-mpirun.conf" >"$tmp/twice" 2>&1; then
  cat "$tmp/twice"; fail "a second submission of a queued chain was accepted"
fi
grep -q "already has job" "$tmp/twice" || { cat "$tmp/twice"; fail "the second submission does not name the live job"; }
# ctmq-status while the chain is queued: Slurm's view of the recorded jobs (one squeue call).
"$bin/ctmq-status" "$run" --format tsv >"$tmp/status2" || fail "ctmq-status on a queued chain"
awk -F'\t' 'NR > 1 && ($5 == "running" || $5 == "pending") { live++ } END { exit !live }' "$tmp/status2" ||
  { cat "$tmp/status2"; fail "ctmq-status shows no running or pending stage while the chain is queued"; }
for ((i = 0; i < 240; ++i)); do
  [[ -f $run/stages/c1-w2a2/DONE ]] && break
  sleep 0.5
done
scancel -u root
wait_idle 60
done_before=()
for s in "${stages[@]}"; do [[ -f $run/stages/$s/DONE ]] && done_before+=("$s"); done
((${#done_before[@]} >= 2)) || fail "c0-fp and c1-w2a2 should be DONE before the cancel"
((${#done_before[@]} < ${#stages[@]})) || fail "the chain finished before scancel; nothing to resume"
echo "   DONE before the cancel: ${done_before[*]}"
stamps=$(for s in "${done_before[@]}"; do stat -c '%n %.9Y' "$run/stages/$s/DONE"; done)
rm "$run/stages/c0-fp/eval.json"
submit "$tmp/run.ini" "$run" --site "$tmp/site-mpirun.conf" >"$tmp/submit3" 2>&1 || { cat "$tmp/submit3"; fail "resubmit failed"; }
for s in "${done_before[@]}"; do
  grep -q "stage $s: DONE" "$tmp/submit3" || { cat "$tmp/submit3"; fail "resubmission did not skip $s"; }
done
grep -q "stage c0-fp: DONE, evaluation job" "$tmp/submit3" || { cat "$tmp/submit3"; fail "no evaluation-only job for c0-fp"; }
wait_idle 240
for s in "${stages[@]}"; do [[ -f $run/stages/$s/DONE && -f $run/stages/$s/eval.json ]] || fail "$s not DONE after resubmit"; done
[[ $(for s in "${done_before[@]}"; do stat -c '%n %.9Y' "$run/stages/$s/DONE"; done) == "$stamps" ]] ||
  fail "a finished stage was run again (DONE rewritten)"
for s in "${done_before[@]}"; do
  [[ $(grep -c "ctmq-train job" "$run/logs/$s.train.log") == 1 ]] || fail "stage $s was trained twice"
done

echo "== 4. preemption: USR1 -> checkpoint, exit 75, requeue, resume"
sed 's/^REQUEUE=.*/REQUEUE=true/' "$tmp/site-mpirun.conf" >"$tmp/site-requeue.conf"
sed -e 's/^cycles = 2/cycles = 1/' -e 's/^k-start = 2/k-start = 1/' -e 's/^epochs-pretrain = 1/epochs-pretrain = 3/' \
  -e 's/^train-limit = 256/train-limit = 2000/' "$tmp/run.ini" >"$tmp/preempt.ini"
run=$tmp/run3
submit "$tmp/preempt.ini" "$run" --site "$tmp/site-requeue.conf" >"$tmp/submit4" 2>&1 || { cat "$tmp/submit4"; fail "submit 4 failed"; }
job=$(squeue -h -n "ctmq-run3-c0-fp" -o %i | head -1)
[[ -n $job ]] || fail "no c0-fp job in the queue"
for ((i = 0; i < 240; ++i)); do  # until c0-fp has logged training steps
  [[ -s $run/stages/c0-fp/metrics.jsonl ]] && break
  sleep 0.5
done
[[ -s $run/stages/c0-fp/metrics.jsonl ]] || fail "c0-fp did not start training"
scancel --signal=USR1 --batch "$job"
wait_idle 300
log=$run/logs/c0-fp.train.log
grep -q "received USR1" "$log" || { cat "$log"; fail "the batch shell did not receive USR1"; }
grep -q "preempted at step" "$log" || { cat "$log"; fail "ctmq-train did not checkpoint on USR1"; }
grep -q "requeueing job $job" "$log" || { cat "$log"; fail "the preempted job was not requeued"; }
[[ $(grep -c "ctmq-train job $job" "$log") == 2 ]] || { cat "$log"; fail "the requeued job did not run again"; }
grep -q "c0-fp (fp): resuming at step" "$log" || { cat "$log"; fail "the requeued job did not resume from its checkpoint"; }
for s in c0-fp c1-w1a1; do
  [[ -f $run/stages/$s/DONE && -f $run/stages/$s/eval.json ]] || fail "$s not DONE after the requeue"
done
echo "slurm_chain: PASS"
