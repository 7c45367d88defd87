#!/usr/bin/env bash
# Builds the GoogleTest unit tests with ASan + UBSan (gcc, CTMQ_SANITIZE=ON) in
# build-asan and runs them through ctest (the MPI tests and the integration
# scripts are left to pipeline/test.sh). Any sanitizer report fails the run.
# Usage: bash pipeline/sanitize.sh [extra ctest arguments, e.g. -R Shard]
# Environment: SANITIZE_BUILD_DIR (default build-asan), JOBS (default nproc),
# BUILD_WRAPPER (a command prefixed to each build step, e.g.
# "flock /tmp/ctmq-build.lock" on a shared machine).
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "$0")/common.sh"
ctmq_exit_on_help "$@"
root=$(cd "$(dirname "$0")/.." && pwd)
build=${SANITIZE_BUILD_DIR:-$root/build-asan}
jobs=${JOBS:-$(nproc)}
read -r -a wrapper <<<"${BUILD_WRAPPER:-}"

# LibTorch and Open MPI are prebuilt without ASan; these options keep their
# reports out while every ctmq frame stays checked:
# - leaks are checked at each test's exit; fuzz/lsan.supp suppresses those
#   with a LibTorch frame (none seen in the unit tests, docs/fuzzing.md).
# - detect_container_overflow=0: a precaution; annotated containers shared
#   with uninstrumented LibTorch would give false reports (libstdc++ annotates
#   vectors only under _GLIBCXX_SANITIZE_VECTOR, not set here).
# - UBSan: print a stack, and -fno-sanitize-recover makes any report fatal.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:detect_container_overflow=0}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/fuzz/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# OpenMP threads that sleep instead of spinning between LibTorch's parallel
# regions: with two tests at a time on two cores, spinning made the training
# tests 4x slower (measured, docs/fuzzing.md).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

if [[ ! -f $build/build.ninja ]]; then
  # -O1 -g1: the ASan recommendation (readable stacks, asserts kept), and a
  # quicker compile than RelWithDebInfo's -O2 -g.
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
    -DCTMQ_SANITIZE=ON -DCTMQ_BUILD_BENCH=OFF -DCTMQ_BUILD_TESTS=ON -DCTMQ_USE_PCH=ON
fi

# Only the per-layer unit-test executables (tests/CMakeLists.txt), one at a
# time so that a shared machine is released between them. Building one also
# runs it once to list its tests (gtest_discover_tests), with the options above.
targets=()
for dir in "$root"/tests/*/; do
  layer=$(basename "$dir")
  compgen -G "$dir*_test.cc" >/dev/null || continue
  [[ $layer == mpi ]] && continue
  targets+=("ctmq_${layer}_tests")
done
for target in "${targets[@]}"; do
  echo "sanitize: building $target"
  "${wrapper[@]}" cmake --build "$build" -j "$jobs" --target "$target"
done

cd "$build"
# The unit tests are every ctest test except the MPI ones and the integration
# scripts (label "integration").
ctest --output-on-failure --timeout 1500 -j "$jobs" -LE integration -E '^mpi\.' "$@"
