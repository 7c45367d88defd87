#!/usr/bin/env bash
# Fails if any C++ file differs from .clang-format's formatting.
# Usage: bash pipeline/check-format.sh
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "$0")/common.sh"
ctmq_exit_on_help "$@"
cd "$(dirname "$0")/.."
files=$(git ls-files '*.h' '*.cc' '*.h.in' | grep -v '\.in$' || true)
[[ -z $files ]] && exit 0
bad=0
for f in $files; do
  if ! clang-format --style=file "$f" | cmp -s - "$f"; then
    echo "check-format: $f is not formatted; run: clang-format -i --style=file $f" >&2
    bad=1
  fi
done
exit $bad
