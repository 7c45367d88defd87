#!/usr/bin/env bash
# Bad input through real Slurm (issue 10, reliability): a run directory, a
# config, a site file and shards whose paths hold spaces and single and double
# quotes, submitted with slurm/submit.sh to a Slurm started on this machine
# (slurm/testing/local-slurm.sh, as in slurm_chain.sh): a 2-stage chain
# (c0-fp, c1-w1a1; 256 Fashion-MNIST images, width 4, launcher srun) must end
# with both stages DONE, evaluated, and their logs where the run directory
# says. Needs root and Debian's slurm/munge packages; fails loudly without them.
# About 1 minute on 2 cores. Env: CTMQ_BIN_DIR, CTMQ_SOURCE_DIR.
set -euo pipefail
test_name=bad_input_slurm
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
start_local_slurm 1

weird="$tmp/dir with spaces, 'single' and \"double\" quotes"
mkdir -p "$weird"
shard_fashion_mnist "$weird/shards of mine"
sed -e 's/^LAUNCHER=.*/LAUNCHER="srun"/' -e 's/^CPUS_PER_TASK=.*/CPUS_PER_TASK=1/' \
  -e 's/^TIME_TRAIN=.*/TIME_TRAIN="00:10:00"/' -e 's/^TIME_EVAL=.*/TIME_EVAL="00:05:00"/' \
  "$src/slurm/site.conf" >"$weird/site 'a'.conf"
write_two_stage_config "$weird/my run.ini" "$weird/shards of mine"
run="$weird/run \"x\" 'y' z"
start=$SECONDS
bash "$src/slurm/submit.sh" "$weird/my run.ini" "$run" --site "$weird/site 'a'.conf" >"$tmp/submit.out" 2>&1 ||
  { cat "$tmp/submit.out"; fail "submit.sh with spaces and quotes in the paths"; }
grep -q "submitted 2 training stages" "$tmp/submit.out" || { cat "$tmp/submit.out"; fail "submit.sh did not submit 2 stages"; }
wait_idle 300
echo "   jobs finished after $((SECONDS - start)) s"
for s in c0-fp c1-w1a1; do
  [[ -f $run/stages/$s/DONE ]] || { tail -n 20 "$run/logs/$s".*.log >&2 || true; fail "stage $s not DONE"; }
  python3 -c 'import json,sys; e=json.load(open(sys.argv[1])); assert e["samples"] == 300 and e["stage"] == sys.argv[2], e' \
    "$run/stages/$s/eval.json" "$s" || fail "eval.json of $s"
  grep -q "ctmq-train job" "$run/logs/$s.train.log" || fail "no Slurm train log for $s in the odd run directory"
done
[[ $(find "$weird" -mindepth 1 -maxdepth 1 | wc -l) == 4 ]] ||  # shards, site, config, run
  fail "files appeared next to the run directory: $(ls "$weird")"
echo "bad_input_slurm: PASS (2 stages DONE and evaluated in '$(basename "$run")')"
