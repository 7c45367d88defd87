#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test (unit, MPI, integration).
# Usage: bash pipeline/test.sh [ctest arguments, e.g. -R quant]
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "$0")/common.sh"
ctmq_exit_on_help "$@"
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/pipeline/install-deps.sh"
bash "$root/pipeline/build.sh"
cd "${BUILD_DIR:-$root/build}"
ctest --output-on-failure --timeout 1500 "$@"
