#!/usr/bin/env bash
# Installs every Debian package ctmq needs to build, test, run and analyse.
# Idempotent; needs root (apt-get).
# Usage: bash pipeline/install-deps.sh
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "$0")/common.sh"
ctmq_exit_on_help "$@"

packages=(
  build-essential cmake ninja-build git clang-format
  shellcheck  # pipeline/check-shell.sh
  clang libclang-rt-14-dev  # fuzz targets (pipeline/fuzz.sh): libFuzzer, ASan and UBSan runtimes
  libtorch-dev libopenmpi-dev openmpi-bin
  libboost-program-options-dev libpng-dev libturbojpeg0-dev libswscale-dev zlib1g-dev pkg-config
  googletest libgtest-dev libbenchmark-dev nlohmann-json3-dev
  libprotobuf-dev protobuf-compiler  # TensorBoard event files (src/ctmq/train/tensorboard_event.proto)
  slurmctld slurmd slurm-client munge
  python3 python3-matplotlib python3-numpy python3-pil python3-torch python3-torchvision
  python3-venv  # pipeline/install-torch.sh: the PyPI PyTorch in a virtual environment
  dataset-fashion-mnist
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: missing packages: ${missing[*]}; run this script as root" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
