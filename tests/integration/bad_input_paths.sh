#!/usr/bin/env bash
# Bad input, part 2 (issue 10, reliability): configs and odd paths.
#   1. configs (ctmq-train --config): wrong types, unknown keys, malformed,
#      missing and misspelt sections: exit 1, an error naming the key or the
#      section (and the line), no run directory created. A misspelt section
#      ([traning]) used to be skipped in silence: the stage trained with the
#      defaults (batch 256, every thread).
#   2. a run directory, config and shards whose paths hold spaces and single
#      and double quotes, through pipeline/run-chain.sh (a 2-stage chain,
#      DONE and evaluated) and slurm/submit.sh --dry-run (each printed sbatch
#      line, read back by the shell, passes the paths as single arguments);
#      stage names with spaces, quotes, "..", "/" or a leading "-" given to
#      ctmq-train: accepted inside stages/ or refused by name, never written
#      outside the run directory.
# Through real Slurm: bad_input_slurm.sh. About 1 minute on 2 cores.
# Env: CTMQ_BIN_DIR, CTMQ_SOURCE_DIR, CTMQ_FASHION_MNIST_DIR.
set -euo pipefail
test_name=bad_input_paths
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
require_bins ctmq-shard ctmq-train ctmq-eval ctmq-plan
declare -A tried=()
count() { tried[$1]=$((${tried[$1]:-0} + 1)); }

shard_fashion_mnist "$tmp/shards"
write_run_ini "$tmp/run.ini" "$tmp/shards" data.train-limit=256 data.test-limit=300

# --- 1. bad configs ----------------------------------------------------------
echo "== 1. bad configs (ctmq-train --config)"
bad_config() {  # bad_config LABEL ERROR_PATTERN: the INI on stdin
  local label=$1 pattern=$2 rc=0
  cat >"$tmp/bad.ini"
  "$bin/ctmq-train" --config "$tmp/bad.ini" --run-dir "$tmp/cfg-run" --stage c0-fp >"$tmp/out" 2>&1 || rc=$?
  ((rc == 1)) || { cat "$tmp/out"; fail "config $label: exit $rc, expected 1"; }
  grep -qi -- "$pattern" "$tmp/out" || { cat "$tmp/out"; fail "config $label: no '$pattern' in the error"; }
  [[ ! -e $tmp/cfg-run ]] || fail "config $label: the run directory was created"
  count "bad config"
  echo "   $label: $(grep -m1 -o 'error: .*' "$tmp/out" | cut -c1-150)"
}
base() { sed -n '1,/^\[eval\]/p' "$tmp/run.ini" | sed '$d'; }
bad_config "batch = thirty-two" "batch.*thirty-two\|thirty-two.*batch" < <(base | sed 's/^batch = 32/batch = thirty-two/')
bad_config "width = 4.5" "width" < <(base | sed 's/^width = 4/width = 4.5/')
bad_config "seed = -1x" "seed" < <(base | sed 's/^seed = 5/seed = -1x/')
bad_config "threads = (empty)" "threads" < <(base | sed 's/^threads = 1/threads =/')
bad_config "unknown key in [train]" "bogus-key.*\[train\]" < <({ base; echo "bogus-key = 1"; })
bad_config "misspelt key widht" "widht" < <({ base; printf '[model]\nwidht = 8\n'; })
bad_config "malformed section header [model" "malformed section.*\[model" < <(base | sed 's/^\[model\]/[model/')
bad_config "a line without '='" "arch small-resnet" < <(base | sed 's/^arch = small-resnet/arch small-resnet/')
bad_config "no [data] section" "train-manifest" < <(base | sed '/^\[data\]/,/^\[model\]/{/^\[model\]/!d}')
bad_config "misspelt section [traning]" "traning" < <(base | sed 's/^\[train\]/[traning]/')
echo "   ${tried[bad config]} bad configs refused by name"

# --- 2. spaces and quotes in paths and stage names ---------------------------
echo "== 2. paths with spaces and quotes (run-chain.sh, submit.sh --dry-run), odd stage names"
weird="$tmp/dir with spaces, 'single' and \"double\" quotes"
mkdir -p "$weird"
cp -r "$tmp/shards" "$weird/shards of mine"
write_two_stage_config "$weird/my run.ini" "$weird/shards of mine"
chain="$weird/run \"x\" 'y' z"
bash "$src/pipeline/run-chain.sh" "$weird/my run.ini" "$chain" >"$tmp/chain.out" 2>&1 ||
  { cat "$tmp/chain.out"; fail "run-chain.sh with spaces and quotes in the paths"; }
for s in c0-fp c1-w1a1; do
  [[ -f $chain/stages/$s/DONE && -f $chain/stages/$s/eval.json && -s $chain/logs/$s.train.log ]] ||
    fail "run-chain.sh, odd paths: stage $s has no DONE/eval.json/log"
done
grep -q "all 2 stages" "$tmp/chain.out" || { cat "$tmp/chain.out"; fail "run-chain.sh, odd paths: no completion line"; }
[[ $(find "$weird" -mindepth 1 -maxdepth 1 | wc -l) == 3 ]] ||  # shards, config, the run directory
  fail "run-chain.sh, odd paths: unexpected entries next to the run directory: $(ls "$weird")"
count "run-chain.sh with spaces and quotes in paths"
echo "   run-chain.sh: a 2-stage chain in '$(basename "$chain")' DONE and evaluated"
# slurm/submit.sh --dry-run: every printed sbatch line, read back by the
# shell, passes the run directory and the site file as single arguments.
sed -e 's/^LAUNCHER=.*/LAUNCHER="srun"/' "$src/slurm/site.conf" >"$weird/site 'a'.conf"
dry="$weird/slurm run \"x\" 'y'"
bash "$src/slurm/submit.sh" "$weird/my run.ini" "$dry" --dry-run --site "$weird/site 'a'.conf" >"$tmp/dry.out" 2>&1 ||
  { cat "$tmp/dry.out"; fail "submit.sh --dry-run with odd paths"; }
[[ ! -e $dry ]] || fail "submit.sh --dry-run created the run directory"
lines=0
while IFS= read -r line; do
  [[ $line == sbatch* ]] || continue
  eval "args=(${line#sbatch })"
  # shellcheck disable=SC2154
  n=${#args[@]}
  [[ ${args[n - 3]} == "$weird/site 'a'.conf" && ${args[n - 2]} == "$(realpath -m "$dry")" ]] ||
    [[ ${args[n - 4]} == "$weird/site 'a'.conf" && ${args[n - 3]} == "$(realpath -m "$dry")" ]] ||
    fail "submit.sh --dry-run: the arguments do not round-trip: ${args[*]: -4}"
  printf '%s\n' "${args[@]}" | grep -q -- "^--output=$(realpath -m "$dry")/logs/c[01]-.*\.log$" ||
    fail "submit.sh --dry-run: --output does not hold the run directory: $line"
  lines=$((lines + 1))
done <"$tmp/dry.out"
((lines == 2)) || { cat "$tmp/dry.out"; fail "submit.sh --dry-run printed $lines sbatch lines, expected 2 (one job per stage)"; }
count "submit.sh --dry-run with spaces and quotes in paths"
echo "   submit.sh --dry-run: 2 sbatch lines, run directory and site file passed as one argument each"
# Stage names: ctmq-train takes them as directory names under stages/.
for name in "a b" "it's" 'say "hi"' "../escape" "a/b" "" "-x"; do
  rc=0
  "$bin/ctmq-train" --config "$tmp/run.ini" --run-dir "$tmp/names" --stage "$name" >"$tmp/out" 2>&1 || rc=$?
  if ((rc == 0)); then
    [[ -f "$tmp/names/stages/$name/DONE" && $(realpath -m "$tmp/names/stages/$name") == "$tmp/names/stages/"* ]] ||
      fail "stage name '$name': exit 0 but no DONE inside the run directory"
    echo "   stage name '$name': accepted, stages/$name/DONE"
  else
    ((rc == 1)) || { cat "$tmp/out"; fail "stage name '$name': exit $rc"; }
    grep -q "error.*stage" "$tmp/out" || { cat "$tmp/out"; fail "stage name '$name': the error does not mention the stage"; }
    echo "   stage name '$name': $(grep -m1 -o 'error: .*' "$tmp/out" | cut -c1-140)"
  fi
  [[ -z $(find "$tmp" -maxdepth 2 -name escape) ]] || fail "stage name '../escape' wrote outside stages/"
  count "odd stage name"
done

echo "bad_input_paths: counts:"
for k in "${!tried[@]}"; do echo "   $k: ${tried[$k]} handled"; done
echo "bad_input_paths: PASS"
