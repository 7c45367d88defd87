#!/usr/bin/env bash
# The configure step's promises (cmake/ctmq_torch.cmake,
# cmake/ctmq_features.cmake, docs/building.md), each a real cmake run in a
# scratch build directory (configure only, a few seconds each):
#  - a PyPI LibTorch (CTMQ_PEER_PYTHON's torch) is used whole, never mixed with
#    Debian's libtorch.so, whether given by CMAKE_PREFIX_PATH or Torch_DIR;
#    with CTMQ_CUDA=ON and CTMQ_NCCL=ON it reports CUDA on and NCCL on;
#  - CTMQ_CUDA=ON against Debian's CPU LibTorch 1.13 stops, naming it;
#  - CTMQ_NCCL=ON with CUDA off stops; an unknown value for an option stops;
#  - CTMQ_TENSORBOARD=OFF is reported off with its package named.
# Env: CTMQ_SOURCE_DIR, CTMQ_PEER_PYTHON (skips the PyPI cases when unset).
set -euo pipefail
test_name=configure_options
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
n=0
configure() {  # configure LOG ARGS...: exit status of cmake -S src -B (new dir)
  local log=$1
  shift
  n=$((n + 1))
  cmake -S "$src" -B "$tmp/build-$n" -G Ninja "$@" >"$log" 2>&1
}
expect_configure_error() {  # expect_configure_error PATTERN ARGS...
  local pattern=$1
  shift
  if configure "$tmp/err.log" "$@"; then
    cat "$tmp/err.log"
    fail "configure with $* succeeded"
  fi
  grep -q -- "$pattern" "$tmp/err.log" || { cat "$tmp/err.log"; fail "no '$pattern' in the error of $*"; }
}

# Debian's LibTorch 1.13 (CPU).
configure "$tmp/debian.log" || { cat "$tmp/debian.log"; fail "configure against Debian's LibTorch"; }
grep -q '^-- ctmq: LibTorch 1\.13.* at /usr$' "$tmp/debian.log" || { cat "$tmp/debian.log"; fail "not Debian's LibTorch"; }
grep -q '^-- ctmq: CUDA off (a CPU LibTorch)' "$tmp/debian.log" || fail "CUDA not reported off"
expect_configure_error "CTMQ_CUDA=ON but the LibTorch at /usr is a CPU build" -DCTMQ_CUDA=ON
expect_configure_error "CTMQ_NCCL=ON needs CUDA" -DCTMQ_NCCL=ON
expect_configure_error "CTMQ_JPEG=maybe: use AUTO, ON or OFF" -DCTMQ_JPEG=maybe
configure "$tmp/off.log" -DCTMQ_TENSORBOARD=OFF || { cat "$tmp/off.log"; fail "CTMQ_TENSORBOARD=OFF"; }
grep -q '^-- ctmq: TENSORBOARD off (CTMQ_TENSORBOARD=OFF).*libprotobuf-dev' "$tmp/off.log" ||
  { cat "$tmp/off.log"; fail "TensorBoard not reported off with its package"; }

if [[ -z ${CTMQ_PEER_PYTHON:-} ]]; then
  echo "$test_name: no CTMQ_PEER_PYTHON (bash pipeline/install-torch.sh): PyPI LibTorch cases skipped"
  exit 0
fi
prefix=$("$CTMQ_PEER_PYTHON" -c 'import torch; print(torch.utils.cmake_prefix_path)' 2>/dev/null)
torch_dir=$(cd "$prefix/../.." && pwd)  # .../site-packages/torch (prefix: .../torch/share/cmake)
check_pypi() {  # check_pypi LOG: LibTorch, its library and NCCL all from the wheel
  local log=$1
  grep -q "^-- ctmq: LibTorch 2\..* at $torch_dir\$" "$log" || { cat "$log"; fail "LibTorch is not $torch_dir"; }
  grep -q "^-- Found Torch: $torch_dir/lib/libtorch.so" "$log" || { cat "$log"; fail "libtorch.so not from $torch_dir"; }
  grep -q '^-- ctmq: CUDA on' "$log" || { cat "$log"; fail "CUDA not on"; }
  grep -q '^-- ctmq: NCCL on' "$log" || { cat "$log"; fail "NCCL not on"; }
}
configure "$tmp/pypi.log" -DCMAKE_PREFIX_PATH="$prefix" -DCTMQ_CUDA=ON -DCTMQ_NCCL=ON ||
  { cat "$tmp/pypi.log"; fail "configure against $torch_dir"; }
check_pypi "$tmp/pypi.log"
# Torch_DIR alone: TorchConfig.cmake first finds Debian's libtorch.so; the retry must win.
configure "$tmp/torch-dir.log" -DTorch_DIR="$prefix/Torch" -DCTMQ_CUDA=ON -DCTMQ_NCCL=ON ||
  { cat "$tmp/torch-dir.log"; fail "configure with Torch_DIR"; }
check_pypi "$tmp/torch-dir.log"
echo "$test_name: PASS"
