#!/usr/bin/env bash
# Fails if shellcheck reports anything on a tracked *.sh file. Run from the
# repository root, so `# shellcheck source=` paths resolve as they do here.
# Findings are fixed, or disabled on the one line (or function) they concern
# with a comment giving the reason; never for a whole file.
# Usage: bash pipeline/check-shell.sh
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "$0")/common.sh"
ctmq_exit_on_help "$@"
cd "$(dirname "$0")/.."
command -v shellcheck >/dev/null ||
  { echo "check-shell: shellcheck not found; run: sudo bash pipeline/install-deps.sh" >&2; exit 1; }
mapfile -t files < <(git ls-files '*.sh')
((${#files[@]} > 0)) || exit 0
if ! shellcheck -x "${files[@]}"; then
  echo "check-shell: shellcheck reported findings (above); reproduce with:" >&2
  echo "  cd $PWD && git ls-files '*.sh' | xargs shellcheck -x" >&2
  exit 1
fi
echo "check-shell: ${#files[@]} scripts, no findings"
