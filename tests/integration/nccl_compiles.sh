#!/usr/bin/env bash
# The NCCL communicator (src/ctmq/dist/nccl_communicator.cc) is compiled only
# against a CUDA LibTorch with NCCL, which the CPU build never sees. Where a
# CUDA toolkit with nccl.h is installed (CUDA_HOME, else /usr/local/cuda*),
# this compiles it with CTMQ_WITH_NCCL against that toolkit and this
# LibTorch's CUDA headers (-fsyntax-only: there is no CUDA LibTorch to link),
# so that an API mistake fails here and not on the GPU machine. Without a
# toolkit it says so and passes. About 10 s. Env: CTMQ_SOURCE_DIR.
set -euo pipefail
test_name=nccl_compiles
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

cuda=""
for dir in "${CUDA_HOME:-}" /usr/local/cuda /usr/local/cuda-*; do
  if [[ -n $dir && -f $dir/include/nccl.h && -f $dir/include/cuda_runtime_api.h ]]; then
    cuda=$dir
    break
  fi
done
torch_include=$(dirname "$(dirname "$(find /usr/include /usr/local/include -path '*/c10/cuda/CUDAStream.h' 2>/dev/null | head -1)")")
if [[ -z $cuda || $torch_include == . ]]; then
  echo "$test_name: no CUDA toolkit with nccl.h or no LibTorch CUDA headers here: nothing to check"
  exit 0
fi
# A CPU LibTorch ships c10/cuda without the header its CUDA build generates.
mkdir -p "$tmp/stub/c10/cuda/impl"
echo '#define C10_CUDA_BUILD_SHARED_LIBS' >"$tmp/stub/c10/cuda/impl/cuda_cmake_macros.h"
compile() {
  "${CXX:-c++}" -std=c++17 -fsyntax-only -Wall -Wextra -Werror -DCTMQ_WITH_NCCL=1 \
    -I "$src/src" -I "$bin/generated" -isystem "$tmp/stub" -isystem "$torch_include" \
    -isystem /usr/include/torch/csrc/api/include -isystem "$cuda/include" "$@"
}
compile "$src/src/ctmq/dist/nccl_communicator.cc" ||
  fail "nccl_communicator.cc does not compile with NCCL ($cuda/include/nccl.h)"
# The file really is the NCCL one: without the toolkit it does not even
# preprocess (nccl.h and the CUDA headers are missing).
if "${CXX:-c++}" -std=c++17 -E -o /dev/null -DCTMQ_WITH_NCCL=1 -I "$src/src" -I "$bin/generated" \
  -isystem /usr/include/torch/csrc/api/include "$src/src/ctmq/dist/nccl_communicator.cc" \
  2>/dev/null; then
  fail "nccl_communicator.cc compiled without nccl.h: CTMQ_WITH_NCCL no longer selects the NCCL code"
fi
echo "$test_name: PASS (nccl_communicator.cc against $cuda/include/nccl.h)"
