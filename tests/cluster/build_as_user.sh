#!/usr/bin/env bash
# README "Building on a cluster", tried as a user without root: as USER (an
# account that cannot write outside its home), copy this checkout into
# USER's home, configure with exactly the README's line against the PyTorch
# of USER's own virtual environment (VENV: pip install torch cmake ninja, no
# root), build the programs alone, and check what a cluster user meets:
#  - the configure step reports CUDA on and NCCL on, and LibTorch from VENV;
#  - the programs start and list their parts (--version);
#  - a stage trains on the CPU from Fashion-MNIST shards;
#  - with OPTIONAL=off (default) JPEG, libswscale and protobuf are left out
#    as if the site had none of them: a stage asking for TensorBoard files,
#    and a JPEG folder given to ctmq-shard, are refused with one error naming
#    the option and the package.
# Not part of ctest (it needs root to switch user, and builds the programs
# again, 10-20 minutes on 2 cores): docs/building.md records its last run.
# Usage (as root): bash tests/cluster/build_as_user.sh USER VENV
# Environment: OPTIONAL (off | auto), JOBS (default nproc).
set -euo pipefail
user=${1:?usage: build_as_user.sh USER VENV}
venv=${2:?usage: build_as_user.sh USER VENV}
src=$(cd "$(dirname "$0")/../.." && pwd)
optional=${OPTIONAL:-off}
jobs=${JOBS:-$(nproc)}
fail() { echo "build_as_user: FAIL: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || fail "run as root (it switches to $user)"
id "$user" >/dev/null 2>&1 || fail "no user $user (useradd -m $user)"
as_user() { su - "$user" -c "$1"; }
as_user "touch /usr/local/ctmq-root-check" 2>/dev/null && fail "$user can write to /usr/local: not a user without root"
home=$(getent passwd "$user" | cut -d: -f6)
work=$home/ctmq-cluster-check
# The checkout's tracked files (uncommitted work included), owned by the user.
as_user "rm -rf '$work' && mkdir -p '$work'" || fail "making $work as $user"
(cd "$src" && git ls-files -z | tar --null -T - -cf -) | as_user "tar -xf - -C '$work'"
extra=""
[[ $optional == off ]] && extra="-DCTMQ_JPEG=OFF -DCTMQ_SWSCALE=OFF -DCTMQ_TENSORBOARD=OFF"
t0=$SECONDS
# README's configure line, in the user's environment (PATH from the venv: cmake, ninja, python).
as_user "cd '$work' && source '$venv/bin/activate' && export PATH=/usr/local/cuda/bin:\$PATH &&
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCTMQ_CUDA=ON -DCTMQ_NCCL=ON $extra \
    -DCMAKE_PREFIX_PATH=\"\$(python -c 'import torch; print(torch.utils.cmake_prefix_path)')\" > configure.log 2>&1" ||
  { as_user "tail -30 '$work/configure.log'"; fail "configure"; }
as_user "grep '^-- ctmq:' '$work/configure.log'"
as_user "grep -q '^-- ctmq: CUDA on' '$work/configure.log'" || fail "CUDA is not on"
as_user "grep -q '^-- ctmq: NCCL on' '$work/configure.log'" || fail "NCCL is not on"
as_user "grep -q '^-- ctmq: LibTorch 2\\..* at $venv' '$work/configure.log'" || fail "LibTorch is not the venv's"
as_user "cd '$work' && source '$venv/bin/activate' && cmake --build build -j $jobs > build.log 2>&1" ||
  { as_user "grep -E 'error|FAILED' '$work/build.log' | head -30"; fail "build"; }
echo "build_as_user: configure and build took $((SECONDS - t0)) s"
as_user "ls '$work/build'/ctmq-* | wc -l"
version=$(as_user "'$work/build/ctmq-train' --version")
echo "build_as_user: $version"
[[ $version == *"cuda nccl"* ]] || fail "--version does not list cuda nccl: $version"

# A stage on the CPU, from Fashion-MNIST shards made by the user's ctmq-shard.
fm=/usr/share/datasets/fashion-mnist
as_user "cd '$work' && CTMQ_BIN_DIR='$work/build' bash data-prep/fashion-mnist.sh '$work/shards' > shard.log 2>&1" ||
  { as_user "tail '$work/shard.log'"; fail "sharding Fashion-MNIST from $fm"; }
stage=(--run-dir "$work/run" --train-manifest "$work/shards/train/manifest.json" --arch small-resnet
       --width 4 --train-limit 512 --batch 64 --epochs 1 --threads 2)
# expect_refusal WHAT OPTION PACKAGE COMMAND: COMMAND, run as the user, fails
# and its error names the configure option and the package.
expect_refusal() {
  local what=$1 option=$2 package=$3 log=$work.refusal.log rc=0
  as_user "$4" >"$log" 2>&1 || rc=$?
  [[ $rc -ne 0 ]] || fail "$what succeeded in a build without it"
  if ! { grep -q "$option" "$log" && grep -q "$package" "$log"; }; then
    cat "$log"
    fail "$what: the refusal does not name $option and $package"
  fi
  grep -m1 "error" "$log"
}
if [[ $optional == off ]]; then
  expect_refusal "a stage asking for TensorBoard files" CTMQ_TENSORBOARD libprotobuf-dev \
    "'$work/build/ctmq-train' ${stage[*]} --stage c0-fp --w-bits 32 --a-bits 32"
  [[ ! -e $work/run/stages/c0-fp/DONE ]] || fail "the refused stage left a DONE"
  # A JPEG image folder: one real Fashion-MNIST image, encoded by Pillow.
  as_user "mkdir -p '$work/jpeg/train/a' '$work/jpeg/train/b'"
  /usr/bin/python3 - "$work/jpeg/train" <<'PY'
import gzip, sys
from PIL import Image
with gzip.open("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz") as f:
    data = f.read()
for i, cls in enumerate("ab"):
    Image.frombytes("L", (28, 28), data[16 + 784 * i:16 + 784 * (i + 1)]).save("%s/%s/%d.jpg" % (sys.argv[1], cls, i))
PY
  chown -R "$user" "$work/jpeg"
  expect_refusal "ctmq-shard on a JPEG folder" CTMQ_JPEG libturbojpeg0-dev \
    "'$work/build/ctmq-shard' --format image-folder --input '$work/jpeg/train' --channels 1 --output '$work/jpeg-shards'"
  stage+=(--tensorboard false)
fi
as_user "'$work/build/ctmq-train' ${stage[*]} --stage c0-fp --w-bits 32 --a-bits 32" >"$work.train.log" 2>&1 ||
  { tail -20 "$work.train.log"; fail "training a stage"; }
[[ -f $work/run/stages/c0-fp/DONE ]] || fail "the stage has no DONE"
echo "build_as_user: PASS (a CPU stage trained by $user's build; optional parts $optional)"
