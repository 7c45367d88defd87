#!/usr/bin/env bash
# ctmq-plan as the shell's only reader of config and plan (issue 15;
# docs/run-directory.md, "config.ini and plan.tsv"):
#   1. --get SECTION.KEY prints the value (comments, spacing, --set), nothing
#      with exit 0 for a key that is not set, and exits 1 naming the file and
#      line of a malformed config; ctmq_ini_get (pipeline/common.sh) gives the
#      same values, its DEFAULT, and the resolved config after --set.
#   2. --stage-table PLAN prints name, w, a, epochs, init, role, cycle per
#      stage; ctmq_read_plan fills PLAN_* from it; a damaged plan is refused
#      naming the file, by both.
# A few seconds. Env: CTMQ_BIN_DIR, CTMQ_SOURCE_DIR.
set -euo pipefail
test_name=plan_cli
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
require_bins ctmq-plan ctmq-status
plan=$bin/ctmq-plan

echo "== 1. --get and ctmq_ini_get"
cat >"$tmp/run.ini" <<'EOF'
# a chain
[plan]
k-start = 2   ; two bits first
cycles=1
baselines = false
[data]
  train-manifest =  /d/train/manifest.json   # the training split
test-limit = 300
[slurm]
EOF
out=$("$plan" --config "$tmp/run.ini" --get data.train-manifest)
[[ $out == /d/train/manifest.json ]] || fail "--get data.train-manifest printed '$out'"
out=$("$plan" --config "$tmp/run.ini" --get plan.cycles)
[[ $out == 1 ]] || fail "--get plan.cycles printed '$out'"
out=$("$plan" --config "$tmp/run.ini" --get data.test-manifest) || fail "--get of an unset key exited $?"
[[ -z $out ]] || fail "--get of an unset key printed '$out'"
out=$("$plan" --config "$tmp/run.ini" --get slurm.data-prep) || fail "--get in an empty section exited $?"
[[ -z $out ]] || fail "--get in an empty section printed '$out'"
out=$("$plan" --config "$tmp/run.ini" --set data.test-limit=50 --set train.seed=3 --get data.test-limit)
[[ $out == 50 ]] || fail "--get after --set printed '$out'"
out=$("$plan" --config "$tmp/run.ini" --set train.seed=3 --get train.seed)
[[ $out == 3 ]] || fail "--get of a key added by --set printed '$out'"
if "$plan" --config "$tmp/run.ini" --get data >"$tmp/out" 2>"$tmp/err"; then
  fail "--get without a key exited 0"
fi
grep -q "SECTION.KEY" "$tmp/err" || { cat "$tmp/err" >&2; fail "--get data: no message naming SECTION.KEY"; }
if "$plan" --get data.test-limit >"$tmp/out" 2>"$tmp/err"; then fail "--get without --config exited 0"; fi
grep -q -- "--config" "$tmp/err" || { cat "$tmp/err" >&2; fail "--get without --config: no message"; }
cp "$tmp/run.ini" "$tmp/bad.ini"
printf '[data]\ntest-manifest /d/test/manifest.json\n' >>"$tmp/bad.ini"  # line 11: no '='
if "$plan" --config "$tmp/bad.ini" --get data.train-manifest >"$tmp/out" 2>"$tmp/err"; then
  fail "--get on a malformed config exited 0"
fi
grep -q "bad.ini:11" "$tmp/err" || { cat "$tmp/err" >&2; fail "the malformed config's error does not name bad.ini:11"; }
[[ ! -s $tmp/out ]] || fail "--get on a malformed config printed '$(cat "$tmp/out")'"

(
  # shellcheck source=pipeline/common.sh
  source "$src/pipeline/common.sh"
  unset CTMQ_BIN  # ctmq_ini_get finds the executables itself (CTMQ_BIN_DIR)
  [[ $(ctmq_ini_get "$tmp/run.ini" data train-manifest) == /d/train/manifest.json ]] ||
    fail "ctmq_ini_get data train-manifest"
  [[ $(ctmq_ini_get "$tmp/run.ini" data train-limit 0) == 0 ]] || fail "ctmq_ini_get's DEFAULT"
  [[ $(ctmq_ini_get "$tmp/run.ini" data test-limit 0) == 300 ]] || fail "ctmq_ini_get data test-limit"
  [[ -z $(ctmq_ini_get "$tmp/run.ini" slurm data-prep) ]] || fail "ctmq_ini_get of an unset key"
  # after ctmq_load_plan_for_run: reads of the source see the --set values
  printf '[data]\ntest-limit = 50\n' >"$tmp/resolved.ini"
  CTMQ_RESOLVED_CONFIG=$tmp/resolved.ini CTMQ_CONFIG_SOURCE=$tmp/run.ini
  [[ $(ctmq_ini_get "$tmp/run.ini" data test-limit 0) == 50 ]] || fail "ctmq_ini_get ignores CTMQ_RESOLVED_CONFIG"
  if (ctmq_ini_get "$tmp/bad.ini" data test-limit 0) >"$tmp/out" 2>"$tmp/err"; then
    fail "ctmq_ini_get on a malformed config succeeded"
  fi
  grep -q "bad.ini:11" "$tmp/err" || { cat "$tmp/err" >&2; fail "ctmq_ini_get's error does not name bad.ini:11"; }
)

echo "== 2. --stage-table and ctmq_read_plan"
"$plan" --config "$tmp/run.ini" >"$tmp/plan.tsv"
"$plan" --stage-table "$tmp/plan.tsv" >"$tmp/table"
printf 'c0-fp\t32\t32\t10\tnone\tpretrain\t0\nc1-w2a2\t2\t2\t2\tc0-fp\tstep\t1\nc1-w1a1\t1\t1\t2\tc1-w2a2\tresult\t1\n' >"$tmp/expected"
diff "$tmp/expected" "$tmp/table" >&2 || fail "--stage-table printed other rows (diff above)"
# the same facts as plan.tsv's columns stage, w_bits, a_bits, epochs, init, role, cycle
awk -F'\t' '!/^#/ && $1 != "index" { print $2 "\t" $5 "\t" $6 "\t" $7 "\t" $8 "\t" $9 "\t" $3 }' \
  "$tmp/plan.tsv" | diff - "$tmp/table" >&2 || fail "--stage-table differs from plan.tsv (diff above)"
sed 's/^1\tc1-w2a2\t1\t1\t2\t2\t2/1\tc1-w2a2\t1\t1\t2\t2\t9/' "$tmp/plan.tsv" >"$tmp/edited.tsv"
! cmp -s "$tmp/plan.tsv" "$tmp/edited.tsv" || fail "the test's edit of plan.tsv changed nothing"
if "$plan" --stage-table "$tmp/edited.tsv" >"$tmp/out" 2>"$tmp/err"; then fail "--stage-table accepted an edited plan"; fi
grep -q "edited.tsv fails its checksum" "$tmp/err" || { cat "$tmp/err" >&2; fail "--stage-table: no checksum error naming the file"; }
[[ ! -s $tmp/out ]] || fail "--stage-table printed rows of a refused plan"
(
  # shellcheck source=pipeline/common.sh
  source "$src/pipeline/common.sh"
  unset CTMQ_BIN
  ctmq_read_plan "$tmp/plan.tsv"
  [[ "${PLAN_NAME[*]}|${PLAN_W[*]}|${PLAN_A[*]}|${PLAN_EPOCHS[*]}|${PLAN_INIT[*]}|${PLAN_ROLE[*]}|${PLAN_CYCLE[*]}" == \
     "c0-fp c1-w2a2 c1-w1a1|32 2 1|32 2 1|10 2 2|none c0-fp c1-w2a2|pretrain step result|0 1 1" ]] ||
    fail "ctmq_read_plan filled other arrays: ${PLAN_NAME[*]}|${PLAN_W[*]}|${PLAN_EPOCHS[*]}|${PLAN_CYCLE[*]}"
  if (ctmq_read_plan "$tmp/edited.tsv") >"$tmp/out" 2>"$tmp/err"; then fail "ctmq_read_plan accepted an edited plan"; fi
  grep -q "edited.tsv is refused" "$tmp/err" || { cat "$tmp/err" >&2; fail "ctmq_read_plan: no error naming the file"; }
)
echo "plan_cli: PASS"
