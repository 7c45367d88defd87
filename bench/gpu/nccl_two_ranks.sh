#!/usr/bin/env bash
# Two NCCL ranks on the GPU machine's one GPU (issue 27's device check; at
# most 8 minutes). NCCL refuses two ranks on one GPU unless each rank has its
# own NCCL_HOSTID; ctmq refuses it unless CTMQ_ALLOW_SHARED_GPU=1. Then:
#   1. the communicator conformance suite (tests/mpi/collectives_test.cc) on
#      NCCL with CUDA tensors, beside MPI and the threaded double;
#   2. a 1-epoch stage (Fashion-MNIST, small ResNet width 16, global batch
#      256, W1A1 from scratch, per-rank BatchNorm, 50 KiB buckets: several
#      per step) trained with the gradient allreduce overlapped with backward
#      and after it: the same buckets give the same sums, so the weights agree
#      bit for bit unless cuDNN's own run-to-run differences show (a second
#      overlapped run measures those); the step rate of each run is reported.
# Two ranks sharing one GPU time-slice it: the step rates say what overlap
# costs or saves here, not what two GPUs would do.
# Expects .carry/ from bench/gpu/prepare-carry.sh. Usage: bash bench/gpu/nccl_two_ranks.sh
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 1
# shellcheck source=SCRIPTDIR/setup.sh
source bench/gpu/setup.sh
t0=$(date +%s)
ctmq_gpu_configure -DCTMQ_BUILD_TESTS=ON || exit 1
cmake --build build-gpu -j 16 --target ctmq_mpi_collectives_test ctmq-train ctmq-shard \
  >"$out/build.log" 2>&1
build_rc=$?
grep -E "error|FAILED" "$out/build.log" | head -40
echo "build rc=$build_rc in $(($(date +%s) - t0)) s"
bin=$root/build-gpu
rows=("build rc=$build_rc")
export CTMQ_ALLOW_SHARED_GPU=1

timeout 240 mpirun -n 2 --oversubscribe build-gpu/tests/ctmq_mpi_collectives_test \
  >"$out/conformance.log" 2>&1
rc=$?
rows+=("conformance suite, 2 ranks rc=$rc: nccl $(grep -cE '^\[ +OK \] Communicators/Conformance\..*/nccl' "$out/conformance.log") ok, $(grep -cE '^\[ +SKIPPED \] Communicators/Conformance\..*/nccl' "$out/conformance.log") skipped, $(grep -cE '^\[ +FAILED \]' "$out/conformance.log") failed")
grep -E '^\[ +FAILED|Failure' "$out/conformance.log" | head -20

[[ -f /tmp/ctmq-shards/train/manifest.json ]] ||
  bash data-prep/fashion-mnist.sh /tmp/ctmq-shards >"$out/shard.log" 2>&1
# true twice: cuDNN's backward kernels may sum in any order, so two runs of
# the same schedule show what run-to-run difference to expect.
for overlap in true false true-again; do
  run=/tmp/ctmq-nccl-overlap-$overlap
  rm -rf "$run"
  s0=$(date +%s.%N)
  # shellcheck disable=SC2016  # expanded by each rank's shell
  timeout 180 mpirun -n 2 --oversubscribe -x CTMQ_ALLOW_SHARED_GPU bash -c \
    'NCCL_HOSTID=ctmq-rank-$OMPI_COMM_WORLD_RANK exec "$@"' _ \
    "$bin/ctmq-train" --run-dir "$run" --stage c1-w1a1 --w-bits 1 --a-bits 1 --epochs 1 \
    --train-manifest /tmp/ctmq-shards/train/manifest.json --arch small-resnet --width 16 \
    --batch 256 --device cuda --collectives nccl --sync-batch-norm per-rank \
    --allreduce-bucket-mb 0.05 --overlap-allreduce "${overlap%-again}" --tensorboard false --log-every 20 \
    >"$out/train-overlap-$overlap.log" 2>&1
  rc=$?
  s1=$(date +%s.%N)
  rate=$(python3 -c 'import json,sys
rates = [r["images_per_s"] for r in map(json.loads, open(sys.argv[1])) if r.get("kind", "step") == "step"]
print(f"{sorted(rates)[len(rates) // 2]:.0f}" if rates else "-")' "$run/stages/c1-w1a1/metrics.jsonl" 2>/dev/null)
  rows+=("2 NCCL ranks on 1 GPU, overlap=$overlap rc=$rc: $(awk "BEGIN{printf \"%.1f\", $s1 - $s0}") s wall, median $rate img/s (all ranks)")
  grep -m3 -E "placement|error" "$out/train-overlap-$overlap.log"
done
cat >"$out/compare.py" <<'PY'
import sys, zipfile
def entries(path):
    with zipfile.ZipFile(path) as z:
        return {n.split("/", 1)[1]: z.read(n) for n in z.namelist()}
a, b = entries(sys.argv[1]), entries(sys.argv[2])
bad = sorted(n for n in set(a) | set(b) if a.get(n) != b.get(n))
print("identical" if not bad else f"{len(bad)} entries differ: " + " ".join(bad[:6]))
PY
final() { echo "/tmp/ctmq-nccl-overlap-$1/stages/c1-w1a1/final.pt"; }
rows+=("overlapped vs after-backward final.pt: $(python3 "$out/compare.py" "$(final true)" "$(final false)" 2>&1)")
rows+=("overlapped vs overlapped again (run-to-run): $(python3 "$out/compare.py" "$(final true)" "$(final true-again)" 2>&1)")
nvidia-smi --query-gpu=name,memory.used --format=csv,noheader
echo "== summary ($(($(date +%s) - t0)) s) =="
for r in "${rows[@]}"; do echo "$r"; done
