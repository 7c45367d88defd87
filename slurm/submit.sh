#!/usr/bin/env bash
# Submits a chain to Slurm: one training job and one evaluation job per stage,
# in plan order, each training job waiting (--dependency=afterok) for the job
# of the stage it starts from, each evaluation for its training.
#
# Usage: slurm/submit.sh RUN.ini RUN_DIR [--from STAGE] [--dry-run | --estimate]
#                        [--site FILE] [--quant-report]
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
from='' dry=0 estimate=0 site=${CTMQ_SITE_CONF:-$root/slurm/site.conf} eval_args=()
while (($#)); do
  case $1 in
    --from) from=${2:?--from needs a stage name}; shift 2 ;;
    --dry-run) dry=1; shift ;;
    --estimate) estimate=1; shift ;;
    --site) site=${2:?--site needs a file}; shift 2 ;;
    --quant-report) eval_args+=(--quant-report); shift ;;
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
# run[i]=1: stage i is trained by this submission.
declare -a train_it
for ((i = 0; i < n; ++i)); do
  if ((i >= from_index)); then
    train_it[i]=1
  elif [[ -n $from ]]; then
    train_it[i]=0  # with --from, earlier stages are never (re)run
  elif [[ -f $run/stages/${PLAN_NAME[$i]}/DONE ]]; then
    train_it[i]=0
  else
    train_it[i]=1
  fi
done
for ((i = 0; i < n; ++i)); do
  ((train_it[i])) || continue
  init=${PLAN_INIT[$i]}
  if ctmq_is_stage_init "$init"; then
    j=$(ctmq_stage_index "$init")
    if ((!train_it[j])) && [[ ! -f $run/stages/$init/DONE || ! -f $run/stages/$init/final.pt ]]; then
      ctmq_die "stage ${PLAN_NAME[$i]} starts from $init, but $run/stages/$init/final.pt is missing (or not DONE) and $init is not going to be run; submit with --from $init"
    fi
  elif [[ $init == *:* ]]; then
    [[ -f ${init#*:} ]] || ctmq_die "stage ${PLAN_NAME[$i]} starts from $init, but ${init#*:} does not exist"
  fi
done
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
common=(--chdir="$PWD" --open-mode=append --kill-on-invalid-dep=yes --nodes="$NODES" --ntasks-per-node="$TASKS_PER_NODE"
  --cpus-per-task="$CPUS_PER_TASK")
[[ -n $PARTITION ]] && common+=(--partition="$PARTITION")
[[ -n $ACCOUNT ]] && common+=(--account="$ACCOUNT")
[[ -n ${QOS:-} ]] && common+=(--qos="$QOS")
[[ -n $MEM ]] && common+=(--mem="$MEM")
((GPUS_PER_NODE > 0)) && common+=(--gpus-per-node="$GPUS_PER_NODE")
# shellcheck disable=SC2206
[[ -n ${EXTRA_SBATCH:-} ]] && common+=($EXTRA_SBATCH)
run_name=$(basename "$run_abs")
placeholder=0
# submit ARGS...: sets JOB_ID to the new job's id (a placeholder with --dry-run).
submit() {
  if ((dry)); then
    placeholder=$((placeholder + 1))
    printf 'sbatch'
    printf ' %q' "$@"
    printf '\n'
    JOB_ID="JOB$placeholder"
  else
    JOB_ID=$(sbatch --parsable "$@") || ctmq_die "sbatch failed for: $*"
    JOB_ID=${JOB_ID%%;*}
  fi
}
if ((!dry)); then
  mkdir -p "$run_abs/logs"
  [[ -f $run/config.ini ]] || cp "$config" "$run/config.ini"
  "$CTMQ_BIN/ctmq-plan" --config "$run/config.ini" --run-dir "$run" >/dev/null
  for ((i = from_index; i < n; ++i)); do ctmq_archive_stage "$run_abs" "${PLAN_NAME[$i]}"; done
elif ((mkdir_run)); then
  echo "# dry run: $run would be created" >&2
fi
shard_deps=()
if [[ -n $recipe ]]; then
  if ((dry)); then
    echo "bash $recipe --slurm ${SHARD_TASKS:-4} $shard_out   # the manifests are missing"
    shard_deps=(SHARDJOBS)
  else
    export SBATCH_PARTITION=$PARTITION SBATCH_ACCOUNT=$ACCOUNT SBATCH_TIMELIMIT=${TIME_SHARD:-01:00:00}
    [[ -z $PARTITION ]] && unset SBATCH_PARTITION
    [[ -z $ACCOUNT ]] && unset SBATCH_ACCOUNT
    out=$(bash "$recipe" --slurm "${SHARD_TASKS:-4}" "$shard_out") || ctmq_die "sharding submission failed: $out"
    mapfile -t shard_deps < <(grep -E '^[0-9]+(;.*)?$' <<<"$out" | sed 's/;.*//')
    unset SBATCH_PARTITION SBATCH_ACCOUNT SBATCH_TIMELIMIT
    ctmq_log "submitted sharding into $shard_out: jobs ${shard_deps[*]:-none (already complete)}"
  fi
fi
if [[ -n $SPEED && -n $EPOCH_IMAGES ]]; then
  ctmq_log "time limits: epochs x $EPOCH_IMAGES images / $SPEED images/s ($SPEED_SOURCE) x $TIME_MARGIN, within $(ctmq_minutes_time "$TIME_MIN_MINUTES")..$(ctmq_minutes_time "$TIME_MAX_MINUTES")"
elif [[ -n $SPEED ]]; then
  ctmq_log "time limits: TIME_TRAIN ($TIME_TRAIN) for every stage: the train manifest does not exist yet, so the images per epoch are unknown"
else
  ctmq_log "time limits: TIME_TRAIN ($TIME_TRAIN) for every stage: no images/s figure (set IMAGES_PER_SECOND in the site file, or run a stage first)"
fi
declare -A train_job
submitted=0
for ((i = 0; i < n; ++i)); do
  stage=${PLAN_NAME[$i]}
  deps=("${shard_deps[@]}")
  if ((train_it[i])); then
    init=${PLAN_INIT[$i]}
    if ctmq_is_stage_init "$init" && [[ -n ${train_job[$init]:-} ]]; then deps+=("${train_job[$init]}"); fi
    dep=()
    ((${#deps[@]})) && dep=(--dependency="afterok:$(IFS=:; echo "${deps[*]}")")
    requeue=()
    [[ ${REQUEUE:-false} == true ]] && requeue=(--requeue)
    time_limit=$(ctmq_stage_time_limit "${PLAN_EPOCHS[$i]}")
    submit "${common[@]}" "${dep[@]}" "${requeue[@]}" --job-name="ctmq-$run_name-$stage" \
      --time="$time_limit" --signal="B:USR1@${SIGNAL_SECONDS:-120}" \
      --output="$run_abs/logs/$stage.train.log" "$root/slurm/train.sbatch" "$site" "$run_abs" "$stage"
    id=$JOB_ID
    train_job[$stage]=$id
    submitted=$((submitted + 1))
    deps=("$id")
  elif [[ -f $run/stages/$stage/eval.json ]]; then
    ctmq_log "stage $stage: DONE and evaluated, skipped"
    continue
  else
    ctmq_log "stage $stage: DONE, submitting its evaluation only"
  fi
  dep=()
  ((${#deps[@]})) && dep=(--dependency="afterok:$(IFS=:; echo "${deps[*]}")")
  submit "${common[@]}" "${dep[@]}" --job-name="ctmq-$run_name-$stage-eval" --time="$TIME_EVAL" \
    --output="$run_abs/logs/$stage.eval.log" "$root/slurm/eval.sbatch" "$site" "$run_abs" "$stage" \
    "${eval_args[@]}"
  eid=$JOB_ID
  if ((train_it[i])); then
    ctmq_log "stage $stage: train job ${train_job[$stage]} (${PLAN_EPOCHS[$i]} epochs, --time $time_limit), eval job $eid"
  else
    ctmq_log "stage $stage: eval job $eid"
  fi
done
if ((dry)); then
  ctmq_log "dry run: nothing was submitted ($submitted training stages would be)"
else
  ctmq_log "submitted $submitted training stages of $run; logs in $run_abs/logs/"
fi
