# shellcheck shell=bash
# Sourced by the GPU scripts: unpacks the Debian packages carried in
# .carry/debs (nlohmann-json3-dev, libboost1.74-dev,
# libboost-program-options1.74-dev: the GPU image has Boost headers but no
# compiled Program_options) into /opt/deps and configures build-gpu against
# PyTorch's LibTorch (../shared/gpu.md). Fashion-MNIST's IDX files are expected
# in .carry/fmnist. Usage: ctmq_gpu_configure [extra cmake -D options]
ctmq_gpu_configure() {
  out=${OUT:-/tmp/ctmq-gpu-out}
  mkdir -p "$out" /opt/deps
  local deb
  for deb in .carry/debs/*.deb; do dpkg -x "$deb" /opt/deps; done
  export CTMQ_FASHION_MNIST_DIR=$PWD/.carry/fmnist CTMQ_BIN_DIR=$PWD/build-gpu
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  local torch_prefix
  torch_prefix=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
  cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$torch_prefix;/opt/deps/usr" -DBoost_USE_STATIC_LIBS=ON \
    -DBoost_DIR=/opt/deps/usr/lib/x86_64-linux-gnu/cmake/Boost-1.74.0 "$@" \
    >"$out/configure.log" 2>&1 || { tail -30 "$out/configure.log"; return 1; }
}
