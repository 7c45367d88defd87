#!/usr/bin/env bash
# The ImageNet path a cluster user follows, on a tiny ImageNet-style JPEG tree
# (bench/make_jpeg_folder.py: real Fashion-MNIST images at ImageNet's sizes,
# 3 per class for train, 2 per class for val), without training (ResNet-18 at
# 224 px does not train on this CPU in a test's time):
#  1. data-prep/imagenet-folders.sh writes encoded (version 2) manifests for
#     train and val with MAX_SIDE 256, JPEG_QUALITY 90, 224x224, 3 channels; as
#     a 2-slice array (--array-count 2) the same records; rerun skips; the env
#     overrides reach the manifests;
#  2. ctmq-plan accepts pipeline/configs/imagenet-resnet18.ini as shipped: 31
#     stages, every cycle and the plan ending at W1A1;
#  3. slurm/submit.sh --dry-run with that config, run from a directory where its
#     relative [data] paths name the tiny shards: one job per stage (it trains
#     and evaluates) with a 4-GPU site's shape, chained in plan order, no
#     sharding step, nothing created; each stage's --time from its epochs and
#     the site's IMAGES_PER_SECOND plus its evaluation; with STAGES_PER_JOB=3
#     consecutive stages share jobs; --estimate prints the chain's wall time and
#     GPU-hours from the same figure;
#  4. the same submission with a recording `sbatch` on PATH, then the recorded
#     train job of c3-w1a1 run with a recording `srun`: the stage's command is
#     ctmq-train on RUN/config.ini (the config as shipped: resnet18,
#     random-resized-crop, cuda) at W1A1 from c3-w2a2, and srun gets the
#     job's CPUs per task (SRUN_CPUS_PER_TASK, Slurm >= 22.05).
# A few seconds.
set -euo pipefail
test_name=imagenet_dry_run
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"  # fail, json_field, require_bins, $src, $bin, $tmp
require_bins ctmq-shard ctmq-plan ctmq-train ctmq-eval
mnist=${CTMQ_FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
config=$src/pipeline/configs/imagenet-resnet18.ini
recipe=$src/data-prep/imagenet-folders.sh
py=/usr/bin/python3  # Debian's, with PIL (python3-pil)

echo "== 1. data-prep/imagenet-folders.sh on a tiny JPEG tree"
$py "$src/bench/make_jpeg_folder.py" --mnist "$mnist" --output "$tmp/tree/train" --per-class 3 \
  --split train >/dev/null || fail "bench/make_jpeg_folder.py (train)"
$py "$src/bench/make_jpeg_folder.py" --mnist "$mnist" --output "$tmp/tree/val" --per-class 2 \
  --split t10k >/dev/null || fail "bench/make_jpeg_folder.py (val)"
# The config's [data] paths are relative: shards/imagenet/{train,val} under $work.
work=$tmp/work
shards=$work/shards/imagenet
mkdir -p "$work"
bash "$recipe" "$tmp/tree" "$shards" >"$tmp/prep.log" 2>&1 || { cat "$tmp/prep.log"; fail "recipe"; }
declare -A expect_count=([train]=30 [val]=20)
for split in train val; do
  m=$shards/$split/manifest.json
  [[ -f $m ]] || fail "no $m"
  for kv in record=encoded version=2 max_side=256 jpeg_quality=90 height=224 width=224 channels=3 \
            count="${expect_count[$split]}"; do
    [[ $(json_field "$m" "${kv%%=*}") == "${kv#*=}" ]] ||
      fail "$split manifest: ${kv%%=*} is $(json_field "$m" "${kv%%=*}"), expected ${kv#*=}"
  done
  grep -q '"record": "encoded"' "$m" || fail "$split manifest has no \"record\": \"encoded\" line"
  "$bin/ctmq-shard" --check "$m" >/dev/null || fail "ctmq-shard --check $m"
done
bash "$recipe" "$tmp/tree" "$shards" >"$tmp/prep2.log" 2>&1 || { cat "$tmp/prep2.log"; fail "rerun"; }
[[ $(grep -c 'complete and valid; skipped' "$tmp/prep2.log") == 2 ]] ||
  { cat "$tmp/prep2.log"; fail "a rerun did not skip both splits"; }
RECORDS_PER_SHARD=8 bash "$recipe" --array-count 2 "$tmp/tree" "$tmp/array" >"$tmp/prep3.log" 2>&1 ||
  { cat "$tmp/prep3.log"; fail "recipe --array-count 2"; }
for split in train val; do
  [[ $(json_field "$tmp/array/$split/manifest.json" record) == encoded ]] || fail "array $split: not encoded"
  [[ $(json_field "$tmp/array/$split/manifest.json" class_counts) == \
     "$(json_field "$shards/$split/manifest.json" class_counts)" ]] || fail "array $split: other class counts"
done
array_shards=("$tmp/array/train"/shard-*.ctmq)
[[ ${#array_shards[@]} == 4 ]] || fail "array train: expected 4 shards of 8 records"
MAX_SIDE=160 JPEG_QUALITY=75 IMAGE_SIZE=128x96 bash "$recipe" "$tmp/tree" "$tmp/small" >"$tmp/prep4.log" 2>&1 ||
  { cat "$tmp/prep4.log"; fail "recipe with MAX_SIDE/JPEG_QUALITY/IMAGE_SIZE"; }
for kv in max_side=160 jpeg_quality=75 height=128 width=96; do
  [[ $(json_field "$tmp/small/val/manifest.json" "${kv%%=*}") == "${kv#*=}" ]] || fail "env override ${kv}"
done
echo "   encoded manifests for train (30) and val (20); array, rerun and env overrides checked"

echo "== 2. ctmq-plan on $config"
"$bin/ctmq-plan" --config "$config" >"$tmp/plan.tsv" || fail "ctmq-plan rejected $config"
# Rows: index stage cycle step w_bits a_bits epochs init role.
grep -v '^#' "$tmp/plan.tsv" | tail -n +2 >"$tmp/rows"
[[ $(wc -l <"$tmp/rows") == 31 ]] || { cat "$tmp/plan.tsv"; fail "expected 31 stages"; }
[[ $(awk -F'\t' 'END { print $5 $6 }' "$tmp/rows") == 11 ]] || fail "the plan's last stage is not W1A1"
for c in 1 2 3; do
  [[ $(awk -F'\t' -v c="$c" '$3 == c { last = $2 "/" $5 $6 "/" $9 } END { print last }' "$tmp/rows") == \
     "c$c-w1a1/11/result" ]] || fail "cycle $c does not end with its W1A1 result"
done
[[ $(awk -F'\t' '$2 == "c0-fp" { print $7 }' "$tmp/rows") == 90 ]] || fail "c0-fp is not 90 epochs"
[[ $(awk -F'\t' '$2 == "base-direct-w1a1" { print $7 }' "$tmp/rows") == 252 ]] || fail "direct baseline epochs"
echo "   31 stages: c0-fp (90 epochs), 3 cycles of 4 -> 1 ending at W1A1, baselines and restart control"

echo "== 3. slurm/submit.sh --dry-run"
sed -e 's/^TASKS_PER_NODE=.*/TASKS_PER_NODE=4/' -e 's/^GPUS_PER_NODE=.*/GPUS_PER_NODE=4/' \
    -e 's/^CPUS_PER_TASK=.*/CPUS_PER_TASK=8/' -e 's/^MEM=.*/MEM="128G"/' \
    -e 's/^LAUNCHER=.*/LAUNCHER="srun"/' -e 's/^IMAGES_PER_SECOND=.*/IMAGES_PER_SECOND=1/' \
    "$src/slurm/site.conf" >"$tmp/gpu-site.conf"
(cd "$work" && bash "$src/slurm/submit.sh" "$config" runs/imagenet --dry-run --site "$tmp/gpu-site.conf") \
  >"$tmp/dry.out" 2>&1 || { cat "$tmp/dry.out"; fail "submit.sh --dry-run"; }
[[ ! -e $work/runs ]] || fail "--dry-run created the run directory"
grep -q 'manifests are missing' "$tmp/dry.out" && fail "--dry-run wants to shard although the manifests exist"
grep -q '31 training stages in 31 jobs would be' "$tmp/dry.out" || { cat "$tmp/dry.out"; fail "no '31 training stages' line"; }
grep '^sbatch' "$tmp/dry.out" >"$tmp/sbatch" || true
[[ $(grep -c '/slurm/train.sbatch ' "$tmp/sbatch") == 31 && $(grep -c '/slurm/eval.sbatch ' "$tmp/sbatch") == 0 ]] ||
  { cat "$tmp/dry.out"; fail "expected 31 train.sbatch lines (training and evaluation in one job) and no eval.sbatch"; }
for flag in --gpus-per-node=4 --ntasks-per-node=4 --cpus-per-task=8 --mem=128G --kill-on-invalid-dep=yes; do
  [[ $(grep -c -- " $flag " "$tmp/sbatch") == 31 ]] || fail "not every sbatch line has $flag"
done
# Each stage's train job waits for the train job of its init. Job ids are
# JOB<line number>; a job name holds the run directory's basename, imagenet.
job_of() { awk -v s="--job-name=ctmq-imagenet-$1 " 'index($0, s) { print "JOB" NR; exit }' "$tmp/sbatch"; }
for pair in c1-w4a4:c0-fp c3-w1a1:c3-w2a2 c2-fp:c1-w1a1 base-direct-w1a1:c0-fp; do
  stage=${pair%%:*} init=${pair#*:}
  grep -- "--job-name=ctmq-imagenet-$stage " "$tmp/sbatch" | grep -q -- "--dependency=afterok:$(job_of "$init") " ||
    fail "the train job of $stage does not wait for $init's ($(job_of "$init"))"
done
tail -n 1 "$tmp/sbatch" | grep -q -- '--job-name=ctmq-imagenet-base-restart-w1a1-14 ' ||
  fail "the last train job is not base-restart-w1a1-14"
# 30 images per epoch at 1 image/s x 1.5: c0-fp (90 epochs) 67.5 min -> 68, c1-w4a4 (18) 13.5 -> 14;
# the evaluation of 20 images adds 20 / 1 x 1.5 = 30 s -> 1 min.
[[ $(grep -- '--job-name=ctmq-imagenet-c0-fp ' "$tmp/sbatch" | grep -o -- '--time=[^ ]*') == --time=01:09:00 &&
   $(grep -- '--job-name=ctmq-imagenet-c1-w4a4 ' "$tmp/sbatch" | grep -o -- '--time=[^ ]*') == --time=00:15:00 ]] ||
  { grep 'time limit\|--time' "$tmp/dry.out" | head -5; fail "c0-fp (90 epochs) and c1-w4a4 (18) do not get 01:09:00 and 00:15:00"; }
echo "   31 sbatch lines (one job per stage: train, then evaluate) with the 4-GPU shape, chained by init"
# Packing: 3 consecutive stages per job at most, each job within TIME_TRAIN (04:00:00).
sed 's/^STAGES_PER_JOB=.*/STAGES_PER_JOB=3/' "$tmp/gpu-site.conf" >"$tmp/pack-site.conf"
(cd "$work" && bash "$src/slurm/submit.sh" "$config" runs/imagenet --dry-run --site "$tmp/pack-site.conf") \
  >"$tmp/pack.out" 2>&1 || { cat "$tmp/pack.out"; fail "submit.sh --dry-run with STAGES_PER_JOB=3"; }
grep '^sbatch' "$tmp/pack.out" >"$tmp/pack.sbatch" || true
bad=$(awk -v plan="$(cut -f2 "$tmp/rows" | tr '\n' ' ')" '
  { for (i = 1; i <= NF; ++i) if ($i ~ /\/slurm\/train\.sbatch$/) first = i + 3
    k = 0; for (i = first; i <= NF && $i != "--"; ++i) { seen[$i]++; order = order $i " "; ++k }
    if (k > 3) bad = bad " a job of " k " stages"; if (k == 3) full++
    match($0, /--time=[0-9:]+/); split(substr($0, RSTART + 7, RLENGTH - 7), t, ":")
    if (t[1] * 60 + t[2] > 240) bad = bad " a job over 04:00:00" }
  END { if (order != plan) bad = bad " stages out of plan order or missing"; if (!full) bad = bad " no job of 3 stages"
        if (NR >= 31) bad = bad " no fewer jobs"; print bad }' "$tmp/pack.sbatch")
[[ -z $bad ]] || { cat "$tmp/pack.sbatch"; fail "STAGES_PER_JOB=3:$bad"; }
echo "   STAGES_PER_JOB=3: $(wc -l <"$tmp/pack.sbatch") jobs for 31 stages, each within 04:00:00"
# 864 epochs x 30 images at 1 image/s = 25,920 s = 7.2 h on 4 GPUs: 28.8 GPU-hours.
(cd "$work" && bash "$src/slurm/submit.sh" "$config" runs/imagenet --estimate --site "$tmp/gpu-site.conf") \
  >"$tmp/estimate.out" 2>&1 || { cat "$tmp/estimate.out"; fail "submit.sh --estimate"; }
if ! grep -qE '^total \(31 stages\) +864 +7:12:00 +28\.80$' "$tmp/estimate.out" || [[ -e $work/runs ]]; then
  cat "$tmp/estimate.out"
  fail "--estimate: no total of 864 epochs, 7:12:00, 28.80 GPU-hours (or it created the run)"
fi

echo "== 4. one stage's job, followed to its command"
mkdir -p "$tmp/fake"
cat >"$tmp/fake/sbatch" <<'SH'
#!/usr/bin/env bash
# Records its arguments (one line per call, shell-quoted); prints a job id.
printf '%q ' "$@" >>"$FAKE_SLURM_LOG"
printf '\n' >>"$FAKE_SLURM_LOG"
echo $(( $(wc -l <"$FAKE_SLURM_LOG") + 100 ))
SH
cat >"$tmp/fake/srun" <<'SH'
#!/usr/bin/env bash
printf '%s\n' "$@" >"$FAKE_SRUN_ARGS"
echo "${SRUN_CPUS_PER_TASK:-unset}" >"$FAKE_SRUN_ARGS.cpus"
SH
chmod +x "$tmp/fake/sbatch" "$tmp/fake/srun"
export FAKE_SLURM_LOG=$tmp/sbatch.log FAKE_SRUN_ARGS=$tmp/srun.args
(cd "$work" && PATH=$tmp/fake:$PATH bash "$src/slurm/submit.sh" "$config" runs/imagenet --site "$tmp/gpu-site.conf") \
  >"$tmp/submit.out" 2>&1 || { cat "$tmp/submit.out"; fail "submit.sh with a recording sbatch"; }
run=$work/runs/imagenet
"$bin/ctmq-plan" --config "$config" --same-config-as "$run/config.ini" ||
  fail "RUN/config.ini holds other values than the config as shipped"
[[ $(wc -l <"$FAKE_SLURM_LOG") == 31 ]] || fail "the submission called sbatch $(wc -l <"$FAKE_SLURM_LOG") times, expected 31"
[[ $(grep -c $'\ttrain\t' "$run/slurm-jobs.tsv") == 31 ]] || fail "RUN/slurm-jobs.tsv does not record 31 train jobs"
line=$(grep -- '--job-name=ctmq-imagenet-c3-w1a1 ' "$FAKE_SLURM_LOG") || fail "no train job for c3-w1a1"
eval "args=($line)"
# shellcheck disable=SC2154
n=${#args[@]}
[[ ${args[n - 5]} == "$src/slurm/train.sbatch" ]] || fail "c3-w1a1's job is not train.sbatch: ${args[*]: -5}"
(cd "$work" && PATH=$tmp/fake:$PATH CTMQ_ROOT_DIR=$src SLURM_NTASKS=4 SLURM_JOB_ID=104 SLURM_CPUS_PER_TASK=8 \
  bash "${args[@]: -5}") >"$tmp/job.out" 2>&1 || { cat "$tmp/job.out"; fail "train.sbatch for c3-w1a1"; }
mapfile -t cmd <"$FAKE_SRUN_ARGS"
# The stage's facts (W1A1, 18 epochs, init c3-w2a2) are read by ctmq-train from RUN/plan.tsv.
expected=(--mpi=pmix --kill-on-bad-exit=1 -n 4 "$(cd "$bin" && pwd)/ctmq-train" --config "$run/config.ini" --run-dir "$run" --stage c3-w1a1)
[[ ${cmd[*]} == "${expected[*]}" ]] ||
  fail "c3-w1a1's job ran: srun ${cmd[*]}; expected: srun ${expected[*]}"
[[ $(cat "$FAKE_SRUN_ARGS.cpus") == 8 ]] ||
  fail "srun ran with SRUN_CPUS_PER_TASK=$(cat "$FAKE_SRUN_ARGS.cpus"), expected the job's 8"
# shellcheck source=pipeline/common.sh
source "$src/pipeline/common.sh"  # ctmq_ini_get, the reader the scripts use
for kv in model:arch=resnet18 train:augment=random-resized-crop train:device=cuda train:batch=256 \
          data:train-manifest=shards/imagenet/train/manifest.json; do
  key=${kv%%=*}
  [[ $(ctmq_ini_get "$run/config.ini" "${key%%:*}" "${key#*:}") == "${kv#*=}" ]] ||
    fail "RUN/config.ini: [${key%%:*}] ${key#*:} is not ${kv#*=}"
done
echo "   c3-w1a1's job: srun ${cmd[*]:0:3} ... --stage c3-w1a1;"
echo "   its config: arch resnet18, augment random-resized-crop, device cuda"
echo "imagenet_dry_run: PASS"
