#!/usr/bin/env bash
# --help of every ctmq executable: exits 0, names each value (--batch N, not
# --batch arg), prints defaults as written (0.9, true; not 0.90000000000000002
# or 1), and ends with examples and the exit codes (apps/app_options.h,
# help_epilogue). Env: CTMQ_BIN_DIR.
set -euo pipefail
src=${CTMQ_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${CTMQ_BIN_DIR:-$src/build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "help_text: FAIL: $*" >&2; exit 1; }

count=0
for app in "$src"/src/apps/ctmq_*.cc; do
  name=$(basename "$app" .cc)
  exe=$bin/${name//_/-}
  [[ -x $exe ]] || fail "$exe is not built"
  rc=0
  "$exe" --help >"$tmp/help" 2>"$tmp/err" || rc=$?
  ((rc == 0)) || fail "$exe --help: exit $rc: $(cat "$tmp/err")"
  if grep -nE ' arg( |$)|\[=arg' "$tmp/help" >"$tmp/bad"; then
    fail "$exe --help names a value 'arg': $(cat "$tmp/bad")"
  fi
  if grep -nE '\(=[-0-9.]*[0-9]{6,}\)' "$tmp/help" >"$tmp/bad"; then
    fail "$exe --help prints a default not as written: $(cat "$tmp/bad")"
  fi
  grep -q '^Examples:' "$tmp/help" || fail "$exe --help has no Examples"
  grep -q '^Exit codes:' "$tmp/help" || fail "$exe --help has no Exit codes"
  grep -qE '^  0 +' "$tmp/help" || fail "$exe --help does not explain exit code 0"
  grep -q -- '--config FILE' "$tmp/help" || fail "$exe --help: no '--config FILE'"
  cp "$tmp/help" "$tmp/${name//_/-}.help"
  count=$((count + 1))
done
((count >= 6)) || fail "only $count executables found under $src/src/apps"
# The preemptible programs document 75; a bool default reads true/false.
for exe in ctmq-train ctmq-eval; do
  grep -qE '^  75 +preempted' "$tmp/$exe.help" || fail "$exe --help does not explain exit 75"
done
grep -q -- '--momentum X (=0.9)' "$tmp/ctmq-train.help" || fail "ctmq-train: momentum default"
grep -q -- '--requeue BOOL (=false)' "$tmp/ctmq-train.help" || fail "ctmq-train: requeue default"
echo "help_text: PASS ($count executables)"
