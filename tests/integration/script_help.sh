#!/usr/bin/env bash
# Every runnable script of pipeline/, slurm/ and data-prep/ (those with a #!
# line; the sourced helpers have none) answers -h and --help with exit 0, a
# "Usage" line on stdout, nothing on stderr, and no code (its header comment
# only). Runs nothing else: a few seconds.
set -euo pipefail
test_name=script_help
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
checked=0
for script in "$src"/pipeline/*.sh "$src"/slurm/*.sh "$src"/slurm/*.sbatch "$src"/data-prep/*.sh; do
  [[ $(head -c 2 "$script") == '#!' ]] || continue
  name=${script#"$src"/}
  for flag in -h --help; do
    bash "$script" "$flag" >"$tmp/out" 2>"$tmp/err" || fail "$name $flag exited $?"
    [[ ! -s $tmp/err ]] || { cat "$tmp/err" >&2; fail "$name $flag wrote to stderr"; }
    grep -q 'Usage' "$tmp/out" || { cat "$tmp/out" >&2; fail "$name $flag printed no Usage line"; }
    if grep -qE '^(set -|source |#SBATCH|#!)' "$tmp/out"; then
      cat "$tmp/out" >&2
      fail "$name $flag printed code, not only its header"
    fi
  done
  checked=$((checked + 1))
done
((checked >= 15)) || fail "only $checked scripts found under $src"
echo "script_help: PASS ($checked scripts)"
