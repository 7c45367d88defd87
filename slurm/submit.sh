#!/usr/bin/env bash
# Submits a chain to Slurm: one job per stage to train (or per STAGES_PER_JOB
# consecutive stages), in plan order, that trains and then evaluates it, each
# waiting (--dependency=afterok) for the job of the stage it starts from; a
# DONE stage without eval.json gets a one-rank evaluation job. Every job is
# recorded in RUN_DIR/slurm-jobs.tsv (ctmq-status reads it); a stage whose
# recorded job is still queued or running is refused, never submitted twice.
#
# Usage: slurm/submit.sh RUN.ini RUN_DIR [--from STAGE] [--dry-run | --estimate]
#                        [--site FILE] [--quant-report]
#                        [--set SECTION.KEY=VALUE]... [--seeds S1,S2,...]
#   --set S.K=V     override key K of section [S] of RUN.ini (repeatable); RUN.ini
#                   with every --set is written to RUN_DIR/config.ini, resolved
#                   (sections in order, keys sorted, comments dropped)
#   --seeds LIST    one chain per seed in RUN_DIR/seed-S/ with --set train.seed=S,
#                   submitted one after another (their jobs run side by side);
#                   missing shards are submitted once, every seed waits for them
#   --from STAGE    retrain STAGE and every later stage (their directories are
#                   moved to RUN_DIR/replaced/TIME/, never deleted)
#   --dry-run       print the sbatch command lines; submit and change nothing
#   --estimate      print each stage's and the total expected wall time and
#                   GPU-hours (core-hours on a CPU site) of the stages that
#                   would be trained; submit and change nothing
#   --site FILE     site settings (default $CTMQ_SITE_CONF, else slurm/site.conf)
#   --quant-report  evaluations also write quant_report.json
#
# Stages that are DONE are skipped (and only evaluated when eval.json is
# missing), so resubmitting the same command after a failure, a scancel or a
# preemption continues where the chain stopped. When [data]'s manifests are
# missing, sharding is submitted first with the recipe named by [slurm]
# data-prep (e.g. data-prep/fashion-mnist.sh) and every stage waits for it.
# Checked before anything is submitted: the --from stage exists, RUN_DIR was
# made with the same config and plan, every stage's init checkpoint exists or
# will be produced by a job of this submission.
# Each training job's --time comes from its epochs and an images/s figure
# (site IMAGES_PER_SECOND, or the speed an earlier stage of RUN_DIR recorded),
# x TIME_MARGIN, within TIME_TRAIN_MIN..TIME_TRAIN_MAX; without a figure every
# stage gets TIME_TRAIN (slurm/time-limits.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/pipeline/common.sh"
ctmq_exit_on_help "$@"
(($# >= 2)) || { ctmq_usage >&2; exit 2; }
config=$1 run=$2
shift 2
args=("$@") seeds=''
from='' dry=0 estimate=0 site=${CTMQ_SITE_CONF:-$root/slurm/site.conf} eval_args=()
while (($#)); do
  case $1 in
    --from) from=${2:?--from needs a stage name}; shift 2 ;;
    --dry-run) dry=1; shift ;;
    --estimate) estimate=1; shift ;;
    --site) site=${2:?--site needs a file}; shift 2 ;;
    --quant-report) eval_args+=(--quant-report); shift ;;
    --set) CTMQ_SETS+=(--set "${2:?--set needs SECTION.KEY=VALUE}"); shift 2 ;;
    --seeds) seeds=${2:?--seeds needs a list, e.g. 1,2,3}; shift 2 ;;
    *) ctmq_die "unknown argument '$1'; see $0 --help" ;;
  esac
done
[[ -f $config ]] || ctmq_die "config $config does not exist"
[[ -f $site ]] || ctmq_die "site settings $site do not exist; copy slurm/site.conf and pass --site"
site=$(cd "$(dirname "$site")" && pwd)/$(basename "$site")
# shellcheck source=SCRIPTDIR/job-prologue.sh
source "$root/slurm/job-prologue.sh"
# shellcheck source=SCRIPTDIR/time-limits.sh
source "$root/slurm/time-limits.sh"
ctmq_load_site "$site"
ctmq_find_bin
if [[ -n $seeds ]]; then
  ctmq_run_seeds "$0" "$seeds" "$config" "$run" "${args[@]}"
  exit 0
fi
mkdir_run=0
[[ -d $run ]] || mkdir_run=1
run_abs=$(realpath -m "$run")

# --- checks: nothing is submitted or changed until all of them pass ---------
ctmq_load_plan_for_run "$config" "$run" "submit"
n=${#PLAN_NAME[@]}
from_index=$n
if [[ -n $from ]]; then
  from_index=$(ctmq_stage_index "$from") ||
    ctmq_die "--from $from: no such stage in the plan of $config; stages: ${PLAN_NAME[*]}"
fi
# train_it[i]=1: stage i is trained by this submission, as ctmq-status
# decides for both runners (what is DONE, what --from means, and that every
# stage to train starts from a DONE stage or one trained here).
ctmq_stages_to_train "$config" "$run" "$from"
train_it=("${TRAIN_IT[@]}")
manifest_missing=0
for key in train-manifest test-manifest; do
  m=$(ctmq_ini_get "$config" data "$key")
  [[ -n $m ]] || ctmq_die "$config: [data] $key is not set"
  [[ -f $m ]] || manifest_missing=1
done
recipe=
if ((manifest_missing)); then
  recipe=$(ctmq_ini_get "$config" slurm data-prep)
  [[ -n $recipe ]] || ctmq_die "the [data] manifests of $config are missing and [slurm] data-prep (the recipe that makes them, e.g. data-prep/fashion-mnist.sh) is not set"
  [[ $recipe == /* ]] || recipe=$root/$recipe
  [[ -f $recipe ]] || ctmq_die "[slurm] data-prep = $recipe does not exist"
  shard_out=$(dirname "$(dirname "$(ctmq_ini_get "$config" data train-manifest)")")
  [[ $(ctmq_ini_get "$config" data test-manifest) -ef $shard_out/test/manifest.json ||
     $(ctmq_ini_get "$config" data test-manifest) == "$shard_out/test/manifest.json" ]] ||
    ctmq_die "[data] train-manifest and test-manifest must be OUT/train/manifest.json and OUT/test/manifest.json for [slurm] data-prep to build them"
fi
# Nothing is submitted for a stage whose recorded job (RUN/slurm-jobs.tsv) is
# still in the queue: one squeue call for all of them.
if [[ -f $run/slurm-jobs.tsv ]] && ((!estimate)); then
  if queue=$(squeue -h -o '%A %T' 2>/dev/null); then
    live=$(awk -F'\t' 'NR == FNR { state[$1] = $2; next }
      /^#/ { next } { job[$1 "\t" $2] = $3; stage[$1 "\t" $2] = $1 }
      END { for (k in job) if (job[k] in state) print stage[k], job[k], state[job[k]] }' \
      <(tr ' ' '\t' <<<"$queue") "$run/slurm-jobs.tsv" | sort -u)
    while read -r stage id state; do
      [[ -n $stage ]] || continue
      if [[ $stage == - ]]; then
        ctmq_die "sharding job $id of $run is still $state; wait for it (or scancel $id), then submit again"
      fi
      i=$(ctmq_stage_index "$stage") || continue
      if ((train_it[i])) || [[ ! -f $run/stages/$stage/eval.json ]]; then
        ctmq_die "stage $stage of $run already has job $id ($state); wait for it (or scancel $id), then submit again"
      fi
    done <<<"$live"
  elif ((!dry)); then
    ctmq_die "squeue failed: cannot tell whether the jobs recorded in $run/slurm-jobs.tsv still run; submit again when squeue works"
  fi
fi
# Before --from moves stage directories aside: their recorded speed counts.
ctmq_speed_init "$config" "$run"
if ((estimate)); then
  [[ -n $SPEED ]] ||
    ctmq_die "--estimate needs an images/s figure: set IMAGES_PER_SECOND in the site file $site, or train a stage of $run first"
  [[ -n $EPOCH_IMAGES ]] ||
    ctmq_die "--estimate needs the train manifest $(ctmq_ini_get "$config" data train-manifest) for the images per epoch; shard the data first"
  to_train=()
  for ((i = 0; i < n; ++i)); do ((!train_it[i])) || to_train+=("$i"); done
  ctmq_print_estimate "$run" "${to_train[@]}"
  exit 0
fi

# --- submission --------------------------------------------------------------
# CTMQ_SITE_CONF: the sharding jobs' prologue loads the same site (modules).
export CTMQ_ROOT_DIR=$root CTMQ_BIN_DIR=$CTMQ_BIN CTMQ_SITE_CONF=$site
# shellcheck source=SCRIPTDIR/sbatch.sh
source "$root/slurm/sbatch.sh"
ctmq_sbatch_init "$dry"
# The training shape (site file); an evaluation-only job (a DONE stage without
# eval.json) runs one rank on one GPU, or one task on a CPU site.
train_shape=(--chdir="$PWD" --nodes="$NODES" --ntasks-per-node="$TASKS_PER_NODE" --cpus-per-task="$CPUS_PER_TASK")
eval_shape=(--chdir="$PWD" --nodes=1 --ntasks=1 --cpus-per-task="$CPUS_PER_TASK")
[[ -n $MEM ]] && train_shape+=(--mem="$MEM") && eval_shape+=(--mem="$MEM")
((GPUS_PER_NODE > 0)) && train_shape+=(--gpus-per-node="$GPUS_PER_NODE") && eval_shape+=(--gpus-per-node=1)
requeue=(--no-requeue)
[[ ${REQUEUE:-true} == true ]] && requeue=(--requeue)
per_job=${STAGES_PER_JOB:-1}
[[ $per_job =~ ^[1-9][0-9]*$ ]] || ctmq_die "site STAGES_PER_JOB must be a positive count, found '$per_job'"
run_name=$(basename "$run_abs")
[[ $run_name == seed-* ]] && run_name=$(basename "$(dirname "$run_abs")")-$run_name  # --seeds
jobs_file=$run_abs/slurm-jobs.tsv
# record STAGE KIND JOB: one line of RUN/slurm-jobs.tsv (ctmq-status reads it).
record() {
  ((dry)) && return 0
  [[ -f $jobs_file ]] || printf '# stage\tkind\tjob_id\tsubmitted\n' >"$jobs_file"
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$(ctmq_now)" >>"$jobs_file"
}
if ((!dry)); then
  mkdir -p "$run_abs/logs"
  ctmq_write_run_config "$config" "$run"
  "$CTMQ_BIN/ctmq-plan" --config "$run/config.ini" --run-dir "$run" >/dev/null
  for ((i = from_index; i < n; ++i)); do ctmq_archive_stage "$run_abs" "${PLAN_NAME[$i]}"; done
elif ((mkdir_run)); then
  echo "# dry run: $run would be created" >&2
fi
shard_deps=()
if [[ -n $recipe ]]; then
  if [[ -s ${CTMQ_SHARD_JOBS_FILE:-} ]]; then  # --seeds: an earlier seed's submission shards
    mapfile -t shard_deps <"$CTMQ_SHARD_JOBS_FILE"
    ctmq_log "sharding into $shard_out: jobs ${shard_deps[*]}, submitted with an earlier seed"
  elif ((dry)); then
    echo "bash $recipe --slurm ${SHARD_TASKS:-4} $shard_out   # the manifests are missing"
    shard_deps=(SHARDJOBS)
  else
    out=$(bash "$recipe" --slurm "${SHARD_TASKS:-4}" "$shard_out") || ctmq_die "sharding submission failed: $out"
    mapfile -t shard_deps < <(grep -E '^[0-9]+$' <<<"$out")
    for id in "${shard_deps[@]}"; do record - shard "$id"; done
    ctmq_log "submitted sharding into $shard_out: jobs ${shard_deps[*]:-none (already complete)}"
  fi
  if [[ -n ${CTMQ_SHARD_JOBS_FILE:-} ]] && ((${#shard_deps[@]})); then
    printf '%s\n' "${shard_deps[@]}" >"$CTMQ_SHARD_JOBS_FILE"
  fi
fi
if [[ -n $SPEED && -n $EPOCH_IMAGES ]]; then
  ctmq_log "time limits: epochs x $EPOCH_IMAGES images / $SPEED images/s ($SPEED_SOURCE) x $TIME_MARGIN, within $(ctmq_minutes_time "$TIME_MIN_MINUTES")..$(ctmq_minutes_time "$TIME_MAX_MINUTES"), plus the evaluation ($(ctmq_eval_minutes) min)"
elif [[ -n $SPEED ]]; then
  ctmq_log "time limits: TIME_TRAIN ($TIME_TRAIN) for every stage: the train manifest does not exist yet, so the images per epoch are unknown"
else
  ctmq_log "time limits: TIME_TRAIN ($TIME_TRAIN) for every stage: no images/s figure (set IMAGES_PER_SECOND in the site file, or run a stage first)"
fi

# Jobs: consecutive stages to train, STAGES_PER_JOB at most and within the
# longest --time (TIME_TRAIN_MAX), share one job that trains and evaluates
# each in turn; a DONE stage without eval.json gets an evaluation-only job.
declare -A train_job
submitted=0 jobs=0 eval_minutes=$(ctmq_eval_minutes)
group=() group_minutes=0
# submit_group: submits the stages in `group` as one training job.
submit_group() {
  ((${#group[@]})) || return 0
  local deps=("${shard_deps[@]}") s j init
  for s in "${group[@]}"; do  # the jobs of the inits outside this group
    j=$(ctmq_stage_index "$s")
    init=${PLAN_INIT[$j]}
    if ctmq_is_stage_init "$init" && [[ -n ${train_job[$init]:-} && " ${group[*]} " != *" $init "* ]]; then
      [[ " ${deps[*]} " == *" ${train_job[$init]} "* ]] || deps+=("${train_job[$init]}")
    fi
  done
  local dep=() first=${group[0]} last=${group[-1]} name
  # A stage at the longest --time plus its evaluation would exceed it: the
  # evaluation then comes after a requeue (the stage checkpoints on USR1).
  ((group_minutes > TIME_MAX_MINUTES)) && group_minutes=$TIME_MAX_MINUTES
  ((${#deps[@]})) && dep=(--dependency="afterok:$(IFS=:; echo "${deps[*]}")")
  name=$first
  [[ $last != "$first" ]] && name=$first..$last
  ctmq_sbatch "${train_shape[@]}" "${dep[@]}" "${requeue[@]}" --job-name="ctmq-$run_name-$name" \
    --time="$(ctmq_minutes_time "$group_minutes")" --signal="B:USR1@${SIGNAL_SECONDS:-120}" \
    --output="$run_abs/logs/$name.job.log" "$root/slurm/train.sbatch" "$site" "$run_abs" "${group[@]}" \
    -- "${eval_args[@]}"
  for s in "${group[@]}"; do
    train_job[$s]=$JOB_ID
    record "$s" train "$JOB_ID"
  done
  ctmq_log "stage(s) ${group[*]}: job $JOB_ID trains and evaluates (--time $(ctmq_minutes_time "$group_minutes"))"
  submitted=$((submitted + ${#group[@]})) jobs=$((jobs + 1))
  group=() group_minutes=0
}
for ((i = 0; i < n; ++i)); do
  stage=${PLAN_NAME[$i]}
  if ((train_it[i])); then
    minutes=$(($(ctmq_stage_minutes "${PLAN_EPOCHS[$i]}") + eval_minutes))
    if ((${#group[@]} >= per_job || (${#group[@]} > 0 && group_minutes + minutes > TIME_MAX_MINUTES))); then
      submit_group
    fi
    group+=("$stage") group_minutes=$((group_minutes + minutes))
    continue
  fi
  submit_group  # packed stages are consecutive
  if [[ ! -f $run/stages/$stage/DONE ]]; then
    ctmq_log "stage $stage: not DONE, not run (before --from $from)"
    continue
  fi
  if [[ -f $run/stages/$stage/eval.json ]]; then
    ctmq_log "stage $stage: DONE and evaluated, skipped"
    continue
  fi
  dep=()
  ((${#shard_deps[@]})) && dep=(--dependency="afterok:$(IFS=:; echo "${shard_deps[*]}")")
  ctmq_sbatch "${eval_shape[@]}" "${dep[@]}" "${requeue[@]}" \
    --job-name="ctmq-$run_name-$stage-eval" --time="$TIME_EVAL" --signal="B:USR1@${SIGNAL_SECONDS:-120}" \
    --output="$run_abs/logs/$stage.eval.log" "$root/slurm/eval.sbatch" "$site" "$run_abs" "$stage" \
    "${eval_args[@]}"
  record "$stage" eval "$JOB_ID"
  jobs=$((jobs + 1))
  ctmq_log "stage $stage: DONE, evaluation job $JOB_ID (one rank)"
done
submit_group
if ((dry)); then
  ctmq_log "dry run: nothing was submitted ($submitted training stages in $jobs jobs would be)"
else
  ctmq_log "submitted $submitted training stages of $run in $jobs jobs; logs in $run_abs/logs/"
fi
