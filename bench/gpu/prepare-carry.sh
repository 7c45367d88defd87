#!/usr/bin/env bash
# Prepares .carry/ (git-ignored) on the development machine for the GPU
# machine, which has no network (../shared/gpu.md): the Debian packages that
# its image lacks (nlohmann-json's headers; Boost.Program_options, compiled)
# as .deb files, and Fashion-MNIST's IDX files. Name .carry in the device
# tool's carry list; bench/gpu/setup.sh unpacks it there.
# Usage: bash bench/gpu/prepare-carry.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
mkdir -p .carry/debs .carry/fmnist
(cd .carry/debs && apt-get download nlohmann-json3-dev libboost1.74-dev libboost-program-options1.74-dev \
  libboost-program-options1.74.0 >/dev/null)
cp /usr/share/datasets/fashion-mnist/*-ubyte.gz .carry/fmnist/
du -sh .carry
