#!/usr/bin/env bash
# Configures and builds ctmq. Incremental; the configure step reruns each time
# (a few seconds) so that the options given here always hold.
# Usage: bash pipeline/build.sh [--torch debian|pypi] [--tests] [extra cmake -D options]
#   --torch debian  Debian's LibTorch 1.13, CPU (libtorch-dev), into build/ (default)
#   --torch pypi    the PyPI PyTorch of pipeline/pytorch-version (CUDA, NCCL),
#                   installed without root by pipeline/install-torch.sh, into
#                   build-pypi/; configure fails unless CUDA and NCCL are on
#   --tests         also the tests and benchmarks (pipeline/test.sh); without
#                   it only the programs are built
# Environment: BUILD_DIR (overrides the directory), JOBS (default nproc).
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "$0")/common.sh"
ctmq_exit_on_help "$@"
root=$CTMQ_ROOT
torch=debian tests=OFF
cmake_args=()
while (($# > 0)); do
  case $1 in
    --torch) torch=${2:?--torch needs debian or pypi}; shift 2 ;;
    --tests) tests=ON; shift ;;
    *) cmake_args+=("$1"); shift ;;
  esac
done
case $torch in
  debian) build=${BUILD_DIR:-$root/build} ;;
  pypi)
    venv=$(bash "$root/pipeline/install-torch.sh" | tail -n 1)
    prefix=$("$venv/bin/python" -c 'import torch; print(torch.utils.cmake_prefix_path)')
    cmake_args=("-DCMAKE_PREFIX_PATH=$prefix" -DCTMQ_CUDA=ON -DCTMQ_NCCL=ON "${cmake_args[@]}")
    build=${BUILD_DIR:-$root/build-pypi} ;;
  *) ctmq_die "--torch $torch: use debian or pypi" ;;
esac
jobs=${JOBS:-$(nproc)}
mkdir -p "$build"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCTMQ_BUILD_TESTS=$tests -DCTMQ_BUILD_BENCH=$tests "${cmake_args[@]}" >"$build/configure.log" 2>&1 ||
  { cat "$build/configure.log" >&2; ctmq_die "configure failed (log: $build/configure.log)"; }
grep '^-- ctmq:' "$build/configure.log" || true
cmake --build "$build" -j "$jobs"
