# shellcheck shell=bash
# Sourced by the GPU scripts: checks what the GPU machine needs (one clear line
# and exit within seconds when something is missing), unpacks the Debian
# packages carried in .carry/debs (bench/gpu/prepare-carry.sh: nlohmann-json,
# Boost.Program_options; the GPU image has neither compiled) into /opt/deps,
# and configures build-gpu against the image's PyTorch as docs/building.md's
# cluster recipe does: CUDA and NCCL required (CTMQ_CUDA=ON, CTMQ_NCCL=ON),
# JPEG, resizing and TensorBoard on where the image has them. Fashion-MNIST's
# IDX files are expected in .carry/fmnist.
# Usage: ctmq_gpu_configure [extra cmake -D options]
ctmq_gpu_configure() {
  out=${OUT:-/tmp/ctmq-gpu-out}
  mkdir -p "$out" /opt/deps
  local missing=() tool
  for tool in cmake ninja nvcc mpicxx python3 nvidia-smi; do
    command -v "$tool" >/dev/null || [[ $tool == nvcc && -x /usr/local/cuda/bin/nvcc ]] || missing+=("$tool")
  done
  compgen -G ".carry/debs/*.deb" >/dev/null || missing+=(".carry/debs (run bench/gpu/prepare-carry.sh here and carry .carry)")
  compgen -G ".carry/fmnist/*-ubyte.gz" >/dev/null || missing+=(".carry/fmnist (bench/gpu/prepare-carry.sh)")
  python3 -c 'import torch; assert torch.version.cuda' 2>/dev/null || missing+=("a CUDA PyTorch for python3")
  if ((${#missing[@]} > 0)); then
    echo "gpu setup: missing: ${missing[*]}" >&2
    return 1
  fi
  local deb
  for deb in .carry/debs/*.deb; do dpkg -x "$deb" /opt/deps; done
  export CTMQ_FASHION_MNIST_DIR=$PWD/.carry/fmnist CTMQ_BIN_DIR=$PWD/build-gpu
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  local torch_prefix
  torch_prefix=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
  cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCTMQ_CUDA=ON -DCTMQ_NCCL=ON \
    -DCMAKE_PREFIX_PATH="$torch_prefix;/opt/deps/usr" -DBoost_USE_STATIC_LIBS=ON \
    -DBoost_DIR=/opt/deps/usr/lib/x86_64-linux-gnu/cmake/Boost-1.74.0 "$@" \
    >"$out/configure.log" 2>&1 || { tail -30 "$out/configure.log"; return 1; }
  grep '^-- ctmq:' "$out/configure.log"
}
