#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ (clang, ASan + UBSan, CTMQ_BUILD_FUZZ)
# in build-fuzz and runs each for a bounded time on a copy of its committed seed
# corpus (fuzz/corpus/NAME), then prints target, executions, crashes.
# Exits non-zero when any target crashed; the input that did is kept under
# build-fuzz/artifacts/ (replay: build-fuzz/fuzz/NAME_fuzz ARTIFACT).
# Usage: bash pipeline/fuzz.sh [NAME...]   (default: every fuzz/*_fuzz.cc)
# Environment: FUZZ_SECONDS (per target, default 20), FUZZ_SEED (default 1: CI
# replays the same mutations, so a result reproduces; 0 = libFuzzer picks a new
# seed each run, for exploring), FUZZ_BUILD_DIR (default
# build-fuzz), JOBS (default nproc), BUILD_WRAPPER (a command prefixed to each
# build step, e.g. "flock /tmp/ctmq-build.lock" on a shared machine).
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "$0")/common.sh"
ctmq_exit_on_help "$@"
root=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
seconds=${FUZZ_SECONDS:-20}
seed=${FUZZ_SEED:-1}
jobs=${JOBS:-$(nproc)}
read -r -a wrapper <<<"${BUILD_WRAPPER:-}"

# LibTorch is prebuilt without ASan: keep its own faults out of the reports.
# Leaks are checked after every input (libFuzzer), except those with a
# LibTorch frame (fuzz/lsan.supp: its zip reader leaks on malformed archives);
# detect_container_overflow=0: a precaution, see pipeline/sanitize.sh.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:detect_container_overflow=0}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/fuzz/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export OMP_NUM_THREADS=1

if (($# > 0)); then
  names=("$@")
else
  names=()
  for f in "$root"/fuzz/*_fuzz.cc; do
    n=$(basename "$f" .cc)
    names+=("${n%_fuzz}")
  done
fi

if [[ ! -f $build/build.ninja ]]; then
  # -O1 -g1: readable stacks, asserts kept, quicker to compile than -O2 -g.
  CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
    -DCTMQ_BUILD_FUZZ=ON -DCTMQ_BUILD_TESTS=OFF -DCTMQ_BUILD_BENCH=OFF -DCTMQ_USE_PCH=ON
fi
for name in "${names[@]}"; do
  echo "fuzz: building ${name}_fuzz"
  "${wrapper[@]}" cmake --build "$build" -j "$jobs" --target "${name}_fuzz"
done

artifacts=$build/artifacts
rm -rf "$build/corpus-run" "$artifacts"
mkdir -p "$build/corpus-run" "$artifacts"
rows=()
failed=0
for name in "${names[@]}"; do
  corpus=$build/corpus-run/$name
  cp -r "$root/fuzz/corpus/$name" "$corpus"
  log=$build/corpus-run/$name.log
  echo "fuzz: running ${name}_fuzz for ${seconds} s"
  rc=0
  # -timeout: one input over 10 s is a finding; -rss_limit_mb: so is 2 GiB.
  (cd "$build/corpus-run" && "$build/fuzz/${name}_fuzz" -max_total_time="$seconds" -seed="$seed" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/$name-" \
    "$corpus") >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  crashes=$(find "$artifacts" -name "$name-*" | wc -l)
  if ((rc != 0)); then
    failed=1
    ((crashes > 0)) || crashes=1
    echo "fuzz: ${name}_fuzz failed (exit $rc); last lines of $log:" >&2
    tail -n 40 "$log" >&2
  fi
  rows+=("$name ${execs:-?} $crashes $(find "$corpus" -type f | wc -l)")
done

printf '\n%-14s %12s %8s %8s\n' target executions crashes corpus
for row in "${rows[@]}"; do
  # shellcheck disable=SC2086
  printf '%-14s %12s %8s %8s\n' $row
done
exit $failed
