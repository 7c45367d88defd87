#!/usr/bin/env bash
# The local runner (pipeline/run-chain.sh) end to end on real Fashion-MNIST:
# a full tiny chain (2 cycles, 2 -> 1 bits, baselines), a rerun that skips
# everything, re-evaluation of a stage whose eval.json is missing, --from a
# middle stage (only it and later stages rerun), a bad --from, a run
# directory made with another config (named by its first differing key; a
# comment-only and reordered edit is the same config), a failing stage named
# with its log, a 2-rank chain under mpirun, bad --set values, --seeds 1,2
# with --set (run-chain.sh, and submit.sh --dry-run sharding once). About 2
# minutes on 2 cores.
set -euo pipefail
test_name=chain_local
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
export OMPI_MCA_rmaps_base_oversubscribe=1
shard_fashion_mnist "$tmp/shards"

write_config() {  # write_config FILE CYCLES K_START BASELINES
  write_run_ini "$1" "$tmp/shards" data.train-limit=256 data.test-limit=300 model.width=8 \
    train.batch=64 train.seed=3 train.log-every=2 train.checkpoint-every=2 eval.threads= \
    plan.k-start="$3" plan.k-target=1 plan.cycles="$2" plan.epochs-pretrain=1 plan.epochs-step=1 \
    plan.epochs-accurate=1 plan.baselines="$4"
}
mtimes() { for s in "$@"; do stat -c '%n %.9Y' "$run/stages/$s/DONE"; done; }

config=$tmp/run.ini
run=$tmp/run
write_config "$config" 2 2 true
stages=(c0-fp c1-w2a2 c1-w1a1 c2-fp c2-w2a2 c2-w1a1 base-direct-w1a1 base-step-w1a1)

echo "== 1. full chain"
bash "$src/pipeline/run-chain.sh" "$config" "$run" >"$tmp/out1" 2>&1 || { cat "$tmp/out1"; fail "first run failed"; }
"$bin/ctmq-plan" --config "$config" --same-config-as "$run/config.ini" || fail "config.ini holds other values than the config"
grep -qxF "# source: $config" "$run/config.ini" || fail "config.ini does not name its source"
grep -q "^ *#" <(sed 1,3d "$run/config.ini") && fail "config.ini is not in canonical form"
[[ $(grep -v "^#" "$run/plan.tsv" | cut -f2 | tail -n +2 | tr '\n' ' ') == "${stages[*]} " ]] ||
  fail "plan.tsv stages: $(cut -f2 "$run/plan.tsv" | tr '\n' ' ')"
for s in "${stages[@]}"; do
  [[ -f $run/stages/$s/DONE && -f $run/stages/$s/final.pt ]] || fail "$s not DONE"
  # run-stage.sh passes only the stage's name: ctmq-train took its facts from plan.tsv.
  facts=$(awk -F'\t' -v s="$s" '$2 == s { print "w-bits = " $5 "|a-bits = " $6 "|epochs = " $7 "|init = " $8 }' "$run/plan.tsv")
  IFS='|' read -ra want <<<"$facts"
  ((${#want[@]} == 4)) || fail "plan.tsv has no row for $s"
  for line in "${want[@]}"; do
    grep -qxF "$line" "$run/stages/$s/config.ini" || fail "$s: config.ini lacks '$line' from plan.tsv"
  done
  python3 - "$run/stages/$s/eval.json" "$s" <<'PY' || fail "eval.json of $s is wrong"
import json, sys
e = json.load(open(sys.argv[1]))
assert e["stage"] == sys.argv[2], e["stage"]
assert e["samples"] == 300, e["samples"]
confusion = e["confusion"]
assert sum(map(sum, confusion)) == 300
diag = sum(confusion[i][i] for i in range(10))
assert abs(e["top1"] - 100.0 * diag / 300) < 1e-9, (e["top1"], diag)
assert e["top1"] <= e["top5"] <= 100
PY
  grep -q "^$s " "$tmp/out1" || fail "summary table lacks $s"
done
grep -q "all 8 stages" "$tmp/out1" || fail "no completion line"
before=$(mtimes "${stages[@]}")

echo "== 2. rerun skips every DONE stage"
bash "$src/pipeline/run-chain.sh" "$config" "$run" >"$tmp/out2" 2>&1 || { cat "$tmp/out2"; fail "rerun failed"; }
[[ $(grep -c "DONE, skipped" "$tmp/out2") == 8 ]] || { cat "$tmp/out2"; fail "rerun did not skip all 8 stages"; }
grep -q "training:" "$tmp/out2" && fail "rerun trained something"
[[ $(mtimes "${stages[@]}") == "$before" ]] || fail "rerun touched a DONE marker"

echo "== 3. a missing eval.json is re-evaluated, not retrained"
rm "$run/stages/c1-w2a2/eval.json"
bash "$src/pipeline/run-chain.sh" "$config" "$run" >"$tmp/out3" 2>&1 || { cat "$tmp/out3"; fail "re-evaluation run failed"; }
grep -q "c1-w2a2 *evaluated" "$tmp/out3" || fail "c1-w2a2 was not re-evaluated"
grep -q "training:" "$tmp/out3" && fail "re-evaluation retrained something"
[[ -f $run/stages/c1-w2a2/eval.json ]] || fail "eval.json not rewritten"
[[ $(mtimes "${stages[@]}") == "$before" ]] || fail "re-evaluation touched a DONE marker"

echo "== 4. --from c2-fp reruns c2-fp and every later stage only"
bash "$src/pipeline/run-chain.sh" "$config" "$run" --from c2-fp >"$tmp/out4" 2>&1 || { cat "$tmp/out4"; fail "--from run failed"; }
[[ $(mtimes c0-fp c1-w2a2 c1-w1a1) == "$(grep -E '/(c0-fp|c1-w2a2|c1-w1a1)/' <<<"$before")" ]] ||
  fail "--from c2-fp touched an earlier stage"
for s in c2-fp c2-w2a2 c2-w1a1 base-direct-w1a1 base-step-w1a1; do
  grep -q "$s *training:" "$tmp/out4" || fail "--from c2-fp did not retrain $s"
  [[ $(mtimes "$s") != "$(grep "/$s/" <<<"$before")" ]] || fail "$s DONE marker is the old one"
done
[[ $(grep -c "training:" "$tmp/out4") == 5 ]] || fail "--from trained other stages"
ls "$run"/replaced/*/c2-fp/final.pt >/dev/null || fail "the replaced c2-fp was not kept under replaced/"

echo "== 5. a bad --from is an error before anything runs"
snapshot=$(find "$run" -printf '%p %T@\n' | sort)
if bash "$src/pipeline/run-chain.sh" "$config" "$run" --from c9-w7a7 >"$tmp/out5" 2>&1; then fail "bad --from succeeded"; fi
grep -q "no such stage" "$tmp/out5" || { cat "$tmp/out5"; fail "bad --from message"; }
[[ $(find "$run" -printf '%p %T@\n' | sort) == "$snapshot" ]] || fail "bad --from changed the run directory"

echo "== 6. another config in the same run directory is refused"
sed 's/^epochs-step = 1/epochs-step = 2/' "$config" >"$tmp/other.ini"
if bash "$src/pipeline/run-chain.sh" "$tmp/other.ini" "$run" >"$tmp/out6" 2>&1; then fail "different config accepted"; fi
grep -q "different config" "$tmp/out6" || { cat "$tmp/out6"; fail "different config message"; }
grep -qF "[plan] epochs-step: 2 in $tmp/other.ini" "$tmp/out6" || { cat "$tmp/out6"; fail "the refusal does not name the key"; }
[[ $(find "$run" -printf '%p %T@\n' | sort) == "$snapshot" ]] || fail "refused config changed the run directory"
# Comments, blank lines, spacing, section and key order: the same configuration.
python3 - "$config" "$tmp/commented.ini" <<'PY'
import sys
sections, name = {}, None
for line in open(sys.argv[1]):
    line = line.strip()
    if line.startswith("["):
        name = line
        sections[name] = []
    elif line:
        sections[name].append(line.replace(" = ", "="))
with open(sys.argv[2], "w") as f:
    f.write("# edited: comments only\n")
    for name in reversed(list(sections)):
        f.write("\n%s ; reordered\n" % name)
        for line in reversed(sections[name]):
            f.write("  %s   # note\n" % line)
PY
bash "$src/pipeline/run-chain.sh" "$tmp/commented.ini" "$run" >"$tmp/out6b" 2>&1 || { cat "$tmp/out6b"; fail "a comment-only edit was refused"; }
[[ $(grep -c "DONE, skipped" "$tmp/out6b") == 8 ]] || { cat "$tmp/out6b"; fail "a comment-only edit did not skip all 8 stages"; }
[[ $(find "$run" -path "$run/logs" -prune -o -printf '%p %T@\n' | sort) == "$(grep -v "^$run/logs" <<<"$snapshot")" ]] ||
  fail "a comment-only edit changed the run directory"

echo "== 7. a failing stage stops the chain, naming the stage and its log"
sed "s|^train-manifest = .*|train-manifest = $tmp/nowhere/manifest.json|" "$config" >"$tmp/broken.ini"
if bash "$src/pipeline/run-chain.sh" "$tmp/broken.ini" "$tmp/broken" >"$tmp/out7" 2>&1; then fail "broken chain succeeded"; fi
grep -q "stage c0-fp failed in training" "$tmp/out7" || { cat "$tmp/out7"; fail "failure message"; }
grep -q "logs/c0-fp.train.log" "$tmp/out7" || fail "failure message lacks the log"
[[ ! -e $tmp/broken/stages/c1-w2a2 ]] || fail "the chain went on after a failure"

echo "== 7b. ctmq-status: the state of each stage; --from's rule, one for both runners"
"$bin/ctmq-status" "$run" >"$tmp/status" 2>&1 || { cat "$tmp/status"; fail "ctmq-status failed"; }
for s in "${stages[@]}"; do
  top1=$(python3 -c 'import json, sys; print("%.2f" % json.load(open(sys.argv[1]))["top1"])' "$run/stages/$s/eval.json")
  grep -qE "^$s +.* evaluated +([0-9]+)/\1 .* $top1 " "$tmp/status" ||
    { cat "$tmp/status"; fail "ctmq-status: $s is not 'evaluated' at step S/S with top-1 $top1"; }
done
"$bin/ctmq-status" "$tmp/broken" --format tsv >"$tmp/status7" || fail "ctmq-status on the failed chain"
[[ $(awk -F'\t' '$1 == "c0-fp" { print $5 }' "$tmp/status7") == not-started ]] || { cat "$tmp/status7"; fail "ctmq-status: failed c0-fp"; }
[[ $(awk -F'\t' '$1 == "c1-w2a2" { print $5 "/" $6 }' "$tmp/status7") == waiting/c0-fp ]] || { cat "$tmp/status7"; fail "ctmq-status: c1-w2a2 does not wait for c0-fp"; }
snapshot=$(find "$tmp/broken" -printf '%p %T@\n' | sort)
if bash "$src/pipeline/run-chain.sh" "$tmp/broken.ini" "$tmp/broken" --from c1-w1a1 >"$tmp/out7b" 2>&1; then fail "--from c1-w1a1 without c1-w2a2 DONE succeeded"; fi
grep -q "stage c1-w1a1 starts from c1-w2a2" "$tmp/out7b" || { cat "$tmp/out7b"; fail "--from refusal message"; }
[[ $(find "$tmp/broken" -printf '%p %T@\n' | sort) == "$snapshot" ]] || fail "a refused --from changed the run directory"
# An earlier stage that is not DONE does not stop --from when no stage to train starts from it.
mv "$run/stages/c2-w1a1" "$tmp/held-c2-w1a1"
[[ $("$bin/ctmq-status" "$run" --stages-to-train) == c2-w1a1 ]] || fail "--stages-to-train without --from"
grep -qE "^c2-w1a1 +.* not started " <("$bin/ctmq-status" "$run") || fail "ctmq-status: c2-w1a1 is not 'not started'"
bash "$src/pipeline/run-chain.sh" "$config" "$run" --from base-step-w1a1 >"$tmp/out7c" 2>&1 || { cat "$tmp/out7c"; fail "--from base-step-w1a1 failed"; }
grep -q "c2-w1a1 *not DONE, not run" "$tmp/out7c" || { cat "$tmp/out7c"; fail "c2-w1a1 was not reported as not run"; }
if [[ $(grep -c "training:" "$tmp/out7c") != 1 ]] || ! grep -q "base-step-w1a1 *training:" "$tmp/out7c"; then
  cat "$tmp/out7c"
  fail "--from base-step-w1a1 trained other stages"
fi
[[ ! -e $run/stages/c2-w1a1 ]] || fail "--from base-step-w1a1 ran c2-w1a1"
mv "$tmp/held-c2-w1a1" "$run/stages/c2-w1a1"

echo "== 8. two ranks under mpirun"
write_config "$tmp/two.ini" 1 1 false
bash "$src/pipeline/run-chain.sh" "$tmp/two.ini" "$tmp/two" --ranks 2 >"$tmp/out8" 2>&1 || { cat "$tmp/out8"; fail "2-rank chain failed"; }
python3 -c 'import json,sys; e=json.load(open(sys.argv[1])); assert e["ranks"] == 2 and e["samples"] == 300, e' \
  "$tmp/two/stages/c1-w1a1/eval.json" || fail "2-rank eval.json"
echo "== 9. bad --set values are refused before anything runs"
for bad in "trainseed=1" "train.seed" "trian.seed=1" "train.sed=1" "plan.cyles=2"; do
  if bash "$src/pipeline/run-chain.sh" "$config" "$tmp/bad-set" --set "$bad" >"$tmp/out9" 2>&1; then fail "--set $bad accepted"; fi
  key=${bad%%=*} key=${key#*.}
  grep -qF "$key" "$tmp/out9" || { cat "$tmp/out9"; fail "--set $bad: the error does not name '$key'"; }
  [[ ! -e $tmp/bad-set ]] || fail "--set $bad created the run directory"
done

echo "== 10. --seeds 1,2 with --set: one chain per seed, shared data"
write_config "$tmp/seeds.ini" 1 1 false
bash "$src/pipeline/run-chain.sh" "$tmp/seeds.ini" "$tmp/seeds" --seeds 1,2 --set data.train-limit=64 \
  --set "eval.batch = 50" >"$tmp/out10" 2>&1 || { cat "$tmp/out10"; fail "--seeds 1,2 failed"; }
for seed in 1 2; do
  r=$tmp/seeds/seed-$seed
  for s in c0-fp c1-w1a1; do [[ -f $r/stages/$s/DONE && -f $r/stages/$s/eval.json ]] || fail "seed $seed: $s not done"; done
  for line in "seed = $seed" "train-limit = 64" "batch = 50" "# override: --set train.seed=$seed" \
    "# override: --set data.train-limit=64"; do
    grep -qxF "$line" "$r/config.ini" || { cat "$r/config.ini"; fail "seed $seed: config.ini lacks '$line'"; }
  done
  grep -qxF "seed = $seed" "$r/stages/c0-fp/config.ini" || fail "seed $seed: ctmq-train did not train with seed $seed"
done
[[ $(ls "$tmp/seeds") == "$(printf 'seed-1\nseed-2')" ]] || fail "--seeds made: $(ls "$tmp/seeds")"
cmp -s "$tmp/seeds/seed-1/stages/c0-fp/final.pt" "$tmp/seeds/seed-2/stages/c0-fp/final.pt" &&
  fail "seeds 1 and 2 trained the same weights"
# The same run directory without the seed's override is another configuration.
if bash "$src/pipeline/run-chain.sh" "$tmp/seeds.ini" "$tmp/seeds/seed-2" --set data.train-limit=64 \
  --set eval.batch=50 >"$tmp/out10b" 2>&1; then fail "seed-2 accepted without --set train.seed=2"; fi
grep -qF "[train] seed: 3 in $tmp/seeds.ini with --set, 2 in $tmp/seeds/seed-2/config.ini" "$tmp/out10b" ||
  { cat "$tmp/out10b"; fail "the refusal does not name [train] seed"; }
/usr/bin/python3 "$src/analysis/analyze.py" "$tmp/seeds" --out "$tmp/analysis" >"$tmp/out10c" 2>&1 ||
  { cat "$tmp/out10c"; fail "analyze.py on the --seeds directory"; }
grep -q "2 run(s) in 1 seed group(s)" "$tmp/out10c" || { cat "$tmp/out10c"; fail "the seeds are not one group"; }
# submit.sh: one submission per seed; missing shards are sharded once.
sed "s|$tmp/shards/|$tmp/unsharded/|" "$tmp/seeds.ini" >"$tmp/slurm-seeds.ini"
printf '[slurm]\ndata-prep = data-prep/fashion-mnist.sh\n' >>"$tmp/slurm-seeds.ini"
bash "$src/slurm/submit.sh" "$tmp/slurm-seeds.ini" "$tmp/slurm-seeds" --seeds 1,2 --dry-run \
  >"$tmp/out10d" 2>&1 || { cat "$tmp/out10d"; fail "submit.sh --seeds 1,2 --dry-run"; }
[[ $(grep -c "manifests are missing" "$tmp/out10d") == 1 ]] || { cat "$tmp/out10d"; fail "submit.sh --seeds shards more than once"; }
for seed in 1 2; do
  grep -q "$tmp/slurm-seeds/seed-$seed/logs/" "$tmp/out10d" || { cat "$tmp/out10d"; fail "no jobs for seed $seed"; }
done
[[ ! -e $tmp/slurm-seeds ]] || fail "submit.sh --dry-run --seeds created a run directory"
echo "chain_local: PASS"
