#!/usr/bin/env bash
# Fails if any C++ file differs from .clang-format's formatting.
set -euo pipefail
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
