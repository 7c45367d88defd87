#!/usr/bin/env bash
# Installs what is missing, builds with the tests, and runs every test (unit,
# MPI, integration) against the PyPI PyTorch with CUDA and NCCL (the build GPU
# clusters use; the tests run on the CPU), or against Debian's LibTorch 1.13.
# Usage: bash pipeline/test.sh [--torch pypi|debian] [ctest arguments, e.g. -R quant]
# Environment: as pipeline/build.sh (BUILD_DIR, JOBS).
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "$0")/common.sh"
ctmq_exit_on_help "$@"
root=$CTMQ_ROOT
torch=pypi
if [[ ${1:-} == --torch ]]; then
  torch=${2:?--torch needs pypi or debian}
  shift 2
fi
bash "$root/pipeline/install-deps.sh"
# The PyTorch 2.x environment is the peer of the export, TensorBoard and
# torchvision tests in both configurations.
venv=$(bash "$root/pipeline/install-torch.sh" | tail -n 1)
bash "$root/pipeline/build.sh" --torch "$torch" --tests "-DCTMQ_PEER_PYTHON=$venv/bin/python"
case $torch in
  pypi) cd "${BUILD_DIR:-$root/build-pypi}" ;;
  *) cd "${BUILD_DIR:-$root/build}" ;;
esac
ctest --output-on-failure --timeout 1500 "$@"
