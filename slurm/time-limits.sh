# shellcheck shell=bash
# Per-stage time limits and wall-time estimates for slurm/submit.sh (sourced,
# not run; docs/slurm.md, "Time limits").
#
#   ctmq_speed_init CONFIG RUN      # after ctmq_load_site and ctmq_read_plan
#   ctmq_stage_minutes EPOCHS       # a stage's training time limit, minutes
#   ctmq_eval_minutes               # what its evaluation adds, minutes
#
# A training job's --time is the sum over its stages (one, or STAGES_PER_JOB
# packed) of both.
# A stage's --time is EPOCHS x images per epoch / images per second x
# TIME_MARGIN, rounded up to whole minutes, at least TIME_TRAIN_MIN and at most
# TIME_TRAIN_MAX (empty: TIME_TRAIN). Images per epoch: [data] train-limit, or
# the train manifest's count when that is smaller or the limit is 0. Images per
# second (all ranks of one job together): the recorded speed of the newest stage
# of RUN that trained with the site's ranks (the median images_per_s of its
# metrics.jsonl), else the site's IMAGES_PER_SECOND. Without either figure, or
# before the train manifest exists, every stage gets TIME_TRAIN as before.

# ctmq_time_minutes TIME: a Slurm time (M, M:S, H:M:S, D-H, D-H:M, D-H:M:S) in
# whole minutes, seconds rounded up; fails on any other form.
ctmq_time_minutes() {
  local t=$1 d=0 h=0 m=0 s=0
  local -a f
  [[ $t =~ ^[0-9]+(:[0-9]+){0,2}$ || $t =~ ^[0-9]+-[0-9]+(:[0-9]+){0,2}$ ]] || return 1
  if [[ $t == *-* ]]; then
    d=${t%%-*}
    IFS=: read -ra f <<<"${t#*-}"
    h=${f[0]} m=${f[1]:-0} s=${f[2]:-0}
  else
    IFS=: read -ra f <<<"$t"
    case ${#f[@]} in
      1) m=${f[0]} ;;
      2) m=${f[0]} s=${f[1]} ;;
      3) h=${f[0]} m=${f[1]} s=${f[2]} ;;
    esac
  fi
  echo $((10#$d * 1440 + 10#$h * 60 + 10#$m + (10#$s + 59) / 60))
}

# ctmq_minutes_time MINUTES: the --time value, HH:MM:00 or D-HH:MM:00.
ctmq_minutes_time() {
  local m=$1
  if ((m >= 1440)); then
    printf '%d-%02d:%02d:00\n' $((m / 1440)) $((m % 1440 / 60)) $((m % 60))
  else
    printf '%02d:%02d:00\n' $((m / 60)) $((m % 60))
  fi
}

# ctmq_is_positive_number X: true when X is a decimal number above 0.
ctmq_is_positive_number() {
  [[ $1 =~ ^[0-9]*\.?[0-9]+$ ]] && awk -v x="$1" 'BEGIN { exit !(x > 0) }'
}

# ctmq_recorded_speed RUN RANKS: prints "IMAGES_PER_S STAGE" for the newest
# stage (plan order, PLAN_NAME) whose RUN/stages/STAGE/metrics.jsonl has
# records with RANKS ranks and a positive speed (their median); nothing if none.
ctmq_recorded_speed() {
  local run=$1 ranks=$2 i stage speed
  for ((i = ${#PLAN_NAME[@]} - 1; i >= 0; --i)); do
    stage=${PLAN_NAME[$i]}
    [[ -s $run/stages/$stage/metrics.jsonl ]] || continue
    speed=$(python3 "$CTMQ_ROOT/analysis/stage_status.py" speed "$run/stages/$stage/metrics.jsonl" "$ranks") ||
      continue
    if [[ -n $speed ]]; then
      echo "$speed $stage"
      return 0
    fi
  done
}

# ctmq_speed_init CONFIG RUN: sets SPEED (images/s, empty when unknown),
# SPEED_SOURCE (where it comes from, for the user), EPOCH_IMAGES (empty when
# the train manifest does not exist yet) and the bounds TIME_MIN_MINUTES,
# TIME_MAX_MINUTES, TIME_MARGIN; dies on a malformed site value.
# shellcheck disable=SC2034  # SPEED_SOURCE is for submit.sh's messages
ctmq_speed_init() {
  local config=$1 run=$2 manifest recorded
  TIME_MARGIN=${TIME_MARGIN:-1.5}
  ctmq_is_positive_number "$TIME_MARGIN" ||
    ctmq_die "site TIME_MARGIN must be a positive number, found '$TIME_MARGIN'"
  TIME_MIN_MINUTES=$(ctmq_time_minutes "${TIME_TRAIN_MIN:-00:10:00}") ||
    ctmq_die "site TIME_TRAIN_MIN '${TIME_TRAIN_MIN:-}' is not a Slurm time (e.g. 00:10:00)"
  TIME_MAX_MINUTES=$(ctmq_time_minutes "${TIME_TRAIN_MAX:-$TIME_TRAIN}") ||
    ctmq_die "site TIME_TRAIN_MAX '${TIME_TRAIN_MAX:-$TIME_TRAIN}' is not a Slurm time (e.g. 2-00:00:00)"
  ((TIME_MIN_MINUTES <= TIME_MAX_MINUTES)) ||
    ctmq_die "site TIME_TRAIN_MIN (${TIME_TRAIN_MIN:-00:10:00}) is longer than the maximum (${TIME_TRAIN_MAX:-$TIME_TRAIN})"
  if [[ -n ${IMAGES_PER_SECOND:-} ]]; then
    ctmq_is_positive_number "$IMAGES_PER_SECOND" ||
      ctmq_die "site IMAGES_PER_SECOND must be a positive number, found '$IMAGES_PER_SECOND'"
  fi
  SPEED='' SPEED_SOURCE='' EPOCH_IMAGES=''
  recorded=$(ctmq_recorded_speed "$run" $((NODES * TASKS_PER_NODE)))
  if [[ -n $recorded ]]; then
    SPEED=${recorded% *}
    SPEED_SOURCE="recorded by stage ${recorded#* } of $run"
  elif [[ -n ${IMAGES_PER_SECOND:-} ]]; then
    SPEED=$IMAGES_PER_SECOND
    SPEED_SOURCE="site IMAGES_PER_SECOND"
  fi
  EVAL_IMAGES=''
  manifest=$(ctmq_ini_get "$config" data test-manifest)
  if [[ -f $manifest ]]; then
    EVAL_IMAGES=$(ctmq_manifest_count "$manifest" "$(ctmq_ini_get "$config" data test-limit 0)" "$config: [data] test-limit")
  fi
  manifest=$(ctmq_ini_get "$config" data train-manifest)
  [[ -f $manifest ]] || return 0
  EPOCH_IMAGES=$(ctmq_manifest_count "$manifest" "$(ctmq_ini_get "$config" data train-limit 0)" "$config: [data] train-limit")
  return 0
}

# ctmq_manifest_count MANIFEST LIMIT WHAT: the images a stage reads from
# MANIFEST: its count, or LIMIT when that is smaller and not 0.
ctmq_manifest_count() {
  local count
  count=$(python3 "$CTMQ_ROOT/analysis/stage_status.py" manifest-count "$1") ||
    ctmq_die "cannot read the image count of $1"
  [[ $2 =~ ^[0-9]+$ ]] || ctmq_die "$3 must be a count, found '$2'"
  if (($2 > 0 && $2 < count)); then echo "$2"; else echo "$count"; fi
}

# ctmq_stage_minutes EPOCHS: prints a stage's training time limit in minutes
# (TIME_TRAIN when SPEED or EPOCH_IMAGES is unknown). REQUIRES: ctmq_speed_init.
ctmq_stage_minutes() {
  if [[ -z $SPEED || -z $EPOCH_IMAGES ]]; then
    ctmq_time_minutes "$TIME_TRAIN"
    return 0
  fi
  local minutes
  minutes=$(awk -v e="$1" -v n="$EPOCH_IMAGES" -v r="$SPEED" -v k="$TIME_MARGIN" \
    'BEGIN { m = e * n / r * k / 60; c = int(m); if (c < m) c++; print c }')
  ((minutes < TIME_MIN_MINUTES)) && minutes=$TIME_MIN_MINUTES
  ((minutes > TIME_MAX_MINUTES)) && minutes=$TIME_MAX_MINUTES
  echo "$minutes"
}

# ctmq_eval_minutes: prints the minutes an evaluation adds to the job that
# trained its stage: the test images at the training speed (an evaluation image
# costs a forward pass, about a third of a training image, so this holds the
# BatchNorm re-estimation of binary stages too) x TIME_MARGIN, at least 1;
# TIME_EVAL when SPEED or EVAL_IMAGES is unknown. REQUIRES: ctmq_speed_init.
ctmq_eval_minutes() {
  if [[ -z $SPEED || -z $EVAL_IMAGES ]]; then
    ctmq_time_minutes "${TIME_EVAL:-00:30:00}"
    return 0
  fi
  awk -v n="$EVAL_IMAGES" -v r="$SPEED" -v k="$TIME_MARGIN" \
    'BEGIN { m = n / r * k / 60; c = int(m); if (c < m) c++; if (c < 1) c = 1; print c }'
}

# ctmq_print_estimate RUN INDEX...: the --estimate table: per stage INDEX
# (plan position) its epochs, expected wall time (EPOCHS x EPOCH_IMAGES /
# SPEED, no margin) and GPU-hours (NODES x GPUS_PER_NODE GPUs) or, on a CPU
# site, core-hours (NODES x TASKS_PER_NODE x CPUS_PER_TASK cores), then the
# totals. Evaluations and queue waits are not included.
# REQUIRES: ctmq_speed_init found SPEED and EPOCH_IMAGES.
ctmq_print_estimate() {
  local run=$1 unit=GPU per_hour=$((NODES * GPUS_PER_NODE)) i
  shift
  if ((GPUS_PER_NODE == 0)); then unit=core per_hour=$((NODES * TASKS_PER_NODE * CPUS_PER_TASK)); fi
  echo "estimate for $run: $EPOCH_IMAGES images per epoch at $SPEED images/s ($SPEED_SOURCE);"
  echo "$NODES node(s) x $TASKS_PER_NODE rank(s), $per_hour ${unit}s per job; training only (no evaluations, no queue wait)"
  for i in "$@"; do
    printf '%s\t%s\n' "${PLAN_NAME[$i]}" "${PLAN_EPOCHS[$i]}"
  done | awk -F'\t' -v n="$EPOCH_IMAGES" -v r="$SPEED" -v k="$per_hour" -v unit="$unit" '
    function hms(s) { s = int(s + 0.5); return sprintf("%d:%02d:%02d", s / 3600, s % 3600 / 60, s % 60) }
    BEGIN { printf "%-22s %7s %12s %12s\n", "stage", "epochs", "wall", unit "-hours" }
    { s = $2 * n / r; e += $2; t += s
      printf "%-22s %7d %12s %12.2f\n", $1, $2, hms(s), s / 3600 * k }
    END { printf "%-22s %7d %12s %12.2f\n", "total (" NR " stages)", e, hms(t), t / 3600 * k }'
}
