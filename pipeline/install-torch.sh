#!/usr/bin/env bash
# Installs the supported PyPI PyTorch (its version is pipeline/pytorch-version,
# the one place it is written; a CUDA build with NCCL beside it) into a Python
# virtual environment, without root, and prints the environment's directory
# on the last line. Reuses an environment that already has that version.
# ctmq builds against its LibTorch (bash pipeline/build.sh --torch pypi), and
# the benchmarks and tests use it as the PyTorch 2.x peer (eager,
# torch.compile, the tensorboard event reader).
# Usage: bash pipeline/install-torch.sh
# Environment: CTMQ_TORCH_VENV (default ~/.cache/ctmq/pytorch-VERSION),
# PYTHON (the interpreter that makes the environment, default python3; it
# needs the venv module: Debian's python3-venv).
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "$0")/common.sh"
ctmq_exit_on_help "$@"
version=$(<"$CTMQ_ROOT/pipeline/pytorch-version")
venv=$(ctmq_torch_venv)
python=${PYTHON:-python3}
# What the environment holds besides torch: numpy (torch's tensor <-> array),
# tensorboard (its event reader checks ctmq's event files).
extras=(numpy tensorboard)
if "$venv/bin/python" - "$version" "${extras[@]}" >/dev/null 2>&1 <<'PY'
import importlib, sys
import torch
assert torch.__version__.split("+")[0] == sys.argv[1]
for name in sys.argv[2:]:
    importlib.import_module(name)
PY
then
  echo "install-torch: PyTorch $version already in $venv" >&2
else
  command -v "$python" >/dev/null || ctmq_die "no $python to make the environment with (set PYTHON)"
  "$python" -m venv "$venv" ||
    ctmq_die "$python cannot make a virtual environment in $venv (Debian: apt-get install python3-venv)"
  echo "install-torch: installing torch==$version ${extras[*]} into $venv (about 5 GB)" >&2
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "torch==$version" "${extras[@]}" ||
    ctmq_die "pip could not install torch==$version into $venv (see above)"
fi
echo "$venv"
