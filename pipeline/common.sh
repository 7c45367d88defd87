# shellcheck shell=bash
# Shell helpers shared by the pipeline and Slurm scripts (sourced, not run).
# The schedule itself is never computed here: it comes from ctmq-plan's
# plan.tsv (docs/run-directory.md).

CTMQ_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# ctmq_now: the local wall-clock time to the second, ISO 8601 without a zone
# ("2026-11-30T01:02:03"): the prefix of every log line, here and in the
# executables (src/ctmq/common/log.h), so a job's log reads in one order.
ctmq_now() { printf '%(%Y-%m-%dT%H:%M:%S)T\n' -1; }

# ctmq_log MESSAGE...: one log line on stdout, "TIME MESSAGE".
ctmq_log() { printf '%(%Y-%m-%dT%H:%M:%S)T %s\n' -1 "$*"; }

ctmq_die() {
  printf '%(%Y-%m-%dT%H:%M:%S)T %s: error: %s\n' -1 "$(basename "$0")" "$*" >&2
  exit 1
}

# ctmq_duration SECONDS: "1 h 05 min", "4 min 10 s" or "35 s".
ctmq_duration() {
  local s=$1
  if ((s >= 3600)); then
    printf '%d h %02d min\n' $((s / 3600)) $((s % 3600 / 60))
  elif ((s >= 60)); then
    printf '%d min %02d s\n' $((s / 60)) $((s % 60))
  else
    printf '%d s\n' "$s"
  fi
}

# ctmq_usage: prints the running script's leading comment block, which is
# every script's --help: the lines after the #! line up to the first that is
# not a "#" or "# " comment (#SBATCH, code), without the "# ".
ctmq_usage() {
  awk 'NR == 1 && /^#!/ { next } /^#( |$)/ { sub(/^# ?/, ""); print; next } { exit }' "$0"
}

# ctmq_exit_on_help ARGS...: when -h or --help is among ARGS (before any
# "--"), prints the usage to stdout and exits 0.
ctmq_exit_on_help() {
  local arg
  for arg in "$@"; do
    [[ $arg == -- ]] && return 0
    if [[ $arg == -h || $arg == --help ]]; then ctmq_usage; exit 0; fi
  done
}

# ctmq_find_bin: sets CTMQ_BIN to the directory holding the ctmq executables:
# $CTMQ_BIN_DIR, else the directory of ctmq-train on PATH, else build/.
ctmq_find_bin() {
  local candidate
  for candidate in "${CTMQ_BIN_DIR:-}" "$(dirname "$(command -v ctmq-train 2>/dev/null || echo /nonexistent/x)")" \
                   "$CTMQ_ROOT/build"; do
    if [[ -n $candidate && -x $candidate/ctmq-plan && -x $candidate/ctmq-status ]]; then
      CTMQ_BIN=$(cd "$candidate" && pwd)
      return 0
    fi
  done
  ctmq_die "ctmq executables not found; build them (bash pipeline/build.sh) or set CTMQ_BIN_DIR"
}

# ctmq_ini_get FILE SECTION KEY [DEFAULT]: the value of KEY in [SECTION] of an
# INI file, DEFAULT when it is not set (or empty). The file is read by
# ctmq-plan --get, the executables' own reader (src/ctmq/plan/run_config.h):
# the shell parses no config itself, and a malformed file is an error naming
# its line. After ctmq_load_plan_for_run CONFIG, reads of CONFIG see the --set
# overrides. Finds the executables (ctmq_find_bin) when no caller did yet, so
# it works anywhere after sourcing this file; without them it dies saying how
# to build them, as there is no other reader to fall back on.
ctmq_ini_get() {
  local file=$1 section=$2 key=$3 default=${4:-}
  local value
  if [[ -n ${CTMQ_RESOLVED_CONFIG:-} && $file == "${CTMQ_CONFIG_SOURCE:-}" ]]; then
    file=$CTMQ_RESOLVED_CONFIG
  fi
  [[ -n ${CTMQ_BIN:-} ]] || ctmq_find_bin
  value=$("$CTMQ_BIN/ctmq-plan" --config "$file" --get "$section.$key") ||
    ctmq_die "cannot read [$section] $key of $file (see above)"
  echo "${value:-$default}"
}

# ctmq_read_plan FILE: fills the arrays PLAN_NAME, PLAN_W, PLAN_A, PLAN_EPOCHS,
# PLAN_INIT, PLAN_ROLE, PLAN_CYCLE (index = position in the chain) from
# ctmq-plan --stage-table FILE, which first checks FILE as --verify does
# (checksum, version, rows): the shell parses no plan.tsv itself. Finds the
# executables (ctmq_find_bin) when no caller did yet.
ctmq_read_plan() {
  local file=$1 table name w a epochs init role cycle
  PLAN_NAME=() PLAN_W=() PLAN_A=() PLAN_EPOCHS=() PLAN_INIT=() PLAN_ROLE=() PLAN_CYCLE=()
  [[ -n ${CTMQ_BIN:-} ]] || ctmq_find_bin
  table=$("$CTMQ_BIN/ctmq-plan" --stage-table "$file") || ctmq_die "$file is refused (see above)"
  while IFS=$'\t' read -r name w a epochs init role cycle; do
    [[ -n $name ]] || continue
    PLAN_NAME+=("$name") PLAN_W+=("$w") PLAN_A+=("$a") PLAN_EPOCHS+=("$epochs")
    PLAN_INIT+=("$init") PLAN_ROLE+=("$role") PLAN_CYCLE+=("$cycle")
  done <<<"$table"
  ((${#PLAN_NAME[@]} > 0)) || ctmq_die "$file has no stages"
}

# CTMQ_SETS: the command's `--set section.key=value` overrides, as ctmq-plan
# arguments (--set X --set Y); a runner appends to it while parsing its flags.
CTMQ_SETS=()

# ctmq_check_config FILE WHAT: every section of FILE and every key of the
# sections that ctmq-train, ctmq-eval and ctmq-shard read are known to them
# ([slurm] is submit.sh's own and not checked); dies naming the key (and WHAT
# FILE stands for) otherwise.
ctmq_check_config() {
  local exe
  for exe in ctmq-train ctmq-eval ctmq-shard; do
    [[ -x $CTMQ_BIN/$exe ]] || continue
    "$CTMQ_BIN/$exe" --config "$1" --check-config ||
      ctmq_die "$exe does not accept $2 (resolved in $1, see above)"
  done
}

# ctmq_load_plan_for_run CONFIG RUN HINT: resolves CONFIG with CTMQ_SETS
# (ctmq-plan --resolve-config, into the file CTMQ_RESOLVED_CONFIG, removed on
# exit), checks it (ctmq_check_config), and loads its stages
# (ctmq_read_plan); dies when RUN was made with another configuration (its
# config.ini holds other values: comments and key order do not count) or
# plan, naming the first differing key and telling the user to use a new run
# directory or to HINT RUN/config.ini. REQUIRES: ctmq_find_bin was called.
ctmq_load_plan_for_run() {
  local config=$1 run=$2 hint=$3 plan_text plan_file
  plan_text=$("$CTMQ_BIN/ctmq-plan" --config "$config" "${CTMQ_SETS[@]}") || ctmq_die "ctmq-plan rejected $config (see above)"
  CTMQ_RESOLVED_CONFIG=$(mktemp "${TMPDIR:-/tmp}/ctmq-config.XXXXXX") CTMQ_CONFIG_SOURCE=$config
  # shellcheck disable=SC2064  # the name is fixed now
  trap "rm -f '$CTMQ_RESOLVED_CONFIG'" EXIT
  "$CTMQ_BIN/ctmq-plan" --config "$config" "${CTMQ_SETS[@]}" --resolve-config "$CTMQ_RESOLVED_CONFIG" ||
    ctmq_die "ctmq-plan rejected $config (see above)"
  ctmq_check_config "$CTMQ_RESOLVED_CONFIG" "$config${CTMQ_SETS[*]:+ with ${CTMQ_SETS[*]}}"
  if [[ -f $run/config.ini ]] &&
    ! "$CTMQ_BIN/ctmq-plan" --config "$config" "${CTMQ_SETS[@]}" --same-config-as "$run/config.ini"; then
    ctmq_die "$run was made with a different configuration (see above); use a new run directory, or $hint $run/config.ini"
  fi
  if [[ -f $run/plan.tsv && $(cat "$run/plan.tsv") != "$plan_text" ]]; then
    ctmq_die "$run was made with a different plan ($run/plan.tsv differs from what $config gives); use a new run directory"
  fi
  plan_file=$(mktemp)
  printf '%s\n' "$plan_text" >"$plan_file"
  ctmq_read_plan "$plan_file"
  rm -f "$plan_file"
}

# ctmq_write_run_config CONFIG RUN: writes RUN/config.ini, CONFIG resolved
# with CTMQ_SETS (canonical form, atomically), unless RUN has one already
# (ctmq_load_plan_for_run checked that it holds the same values).
ctmq_write_run_config() {
  [[ -f $2/config.ini ]] ||
    "$CTMQ_BIN/ctmq-plan" --config "$1" "${CTMQ_SETS[@]}" --resolve-config "$2/config.ini" ||
    ctmq_die "cannot write $2/config.ini (see above)"
}

# ctmq_run_seeds SCRIPT SEEDS CONFIG RUN ARGS...: runs `bash SCRIPT CONFIG
# RUN/seed-S ARGS... --set train.seed=S` for each S of SEEDS ("1,2,3"), one
# after another, and stops at the first that fails, with its exit status.
# ARGS are the runner's flags; --seeds and its value are left out of them.
ctmq_run_seeds() {
  local script=$1 seeds=$2 config=$3 run=$4 seed rc
  shift 4
  local -a args=()
  while (($#)); do
    if [[ $1 == --seeds ]]; then shift 2; else args+=("$1"); shift; fi
  done
  [[ $seeds =~ ^[0-9]+(,[0-9]+)*$ ]] ||
    ctmq_die "--seeds must be a comma-separated list of non-negative integers, e.g. 1,2,3; got '$seeds'"
  local -a list
  IFS=, read -ra list <<<"$seeds"
  [[ $(printf '%s\n' "${list[@]}" | sort -u | wc -l) == "${#list[@]}" ]] ||
    ctmq_die "--seeds $seeds names a seed twice"
  [[ " ${CTMQ_SETS[*]} " != *" train.seed="* ]] ||
    ctmq_die "--seeds sets [train] seed for each chain; leave out --set train.seed"
  # slurm/submit.sh: the first seed that submits sharding jobs lists them
  # here, and the later seeds wait for those instead of sharding again.
  CTMQ_SHARD_JOBS_FILE=$(mktemp "${TMPDIR:-/tmp}/ctmq-shard-jobs.XXXXXX")
  export CTMQ_SHARD_JOBS_FILE
  # shellcheck disable=SC2064  # the name is fixed now
  trap "rm -f '$CTMQ_SHARD_JOBS_FILE'" EXIT
  for seed in "${list[@]}"; do
    ctmq_log "$(basename "$script"): seed $seed of $seeds: $run/seed-$seed"
    rc=0
    bash "$script" "$config" "$run/seed-$seed" "${args[@]}" --set "train.seed=$seed" || rc=$?
    ((rc == 0)) || { ctmq_log "$(basename "$script"): seed $seed stopped (exit $rc); the seeds after it were not started; run the same command again to continue" >&2; return "$rc"; }
  done
  ctmq_log "$(basename "$script"): seeds $seeds go to $run/seed-*; once their stages are evaluated, analysis/analyze.py $run --out OUT averages them"
}

# ctmq_stage_index NAME: prints the plan position of stage NAME, or fails.
ctmq_stage_index() {
  local i
  for i in "${!PLAN_NAME[@]}"; do
    if [[ ${PLAN_NAME[$i]} == "$1" ]]; then
      echo "$i"
      return 0
    fi
  done
  return 1
}

# ctmq_is_stage_init INIT: true when INIT names a stage (not none/PATH source).
ctmq_is_stage_init() { [[ $1 != none && $1 != *:* ]]; }

# ctmq_stages_to_train CONFIG RUN FROM: sets TRAIN_IT[i]=1 for each stage this
# command trains, 0 for the others (i = plan position), as ctmq-status
# --stages-to-train decides: the one definition of what a runner trains and of
# --from (src/ctmq/plan/train_selection.h, docs/pipeline.md). FROM is "" or a
# stage name. Dies with ctmq-status's message when the selection is refused.
# REQUIRES: ctmq_load_plan_for_run CONFIG RUN was called.
# shellcheck disable=SC2034  # TRAIN_IT is read by the runner that sources this
ctmq_stages_to_train() {
  local config=$1 run=$2 from=$3 plan_file names name i
  plan_file=$(mktemp "${TMPDIR:-/tmp}/ctmq-plan.XXXXXX")
  if ! "$CTMQ_BIN/ctmq-plan" --config "$config" ${CTMQ_SETS[@]+"${CTMQ_SETS[@]}"} >"$plan_file"; then
    rm -f "$plan_file"
    ctmq_die "ctmq-plan rejected $config (see above)"
  fi
  if ! names=$("$CTMQ_BIN/ctmq-status" "$run" --plan "$plan_file" ${from:+--from "$from"} --stages-to-train); then
    rm -f "$plan_file"
    ctmq_die "nothing was run or changed: the stages to train are refused (see above)"
  fi
  rm -f "$plan_file"
  TRAIN_IT=()
  for i in "${!PLAN_NAME[@]}"; do TRAIN_IT[i]=0; done
  while IFS= read -r name; do
    [[ -n $name ]] || continue
    i=$(ctmq_stage_index "$name") || ctmq_die "ctmq-status named stage $name, which is not in the plan"
    TRAIN_IT[i]=1
  done <<<"$names"
}

# ctmq_archive_stage RUN STAGE: moves RUN/stages/STAGE aside to
# RUN/replaced/TIME/STAGE so the stage restarts from scratch; nothing is deleted.
ctmq_archive_stage() {
  local run=$1 stage=$2
  [[ -d $run/stages/$stage ]] || return 0
  local dest
  dest="$run/replaced/${CTMQ_ARCHIVE_STAMP:=$(date -u +%Y%m%dT%H%M%SZ)}"
  mkdir -p "$dest"
  mv "$run/stages/$stage" "$dest/$stage"
  echo "moved $run/stages/$stage to $dest/$stage (it will be retrained)"
}

# ctmq_top1 EVAL_JSON: prints top-1 (percent) with 2 decimals, '-' without the
# file, '?' when it cannot be read.
ctmq_top1() {
  python3 "$CTMQ_ROOT/analysis/stage_status.py" top1 "$1" 2>/dev/null || echo "?"
}

# ctmq_torch_venv: the virtual environment that holds the supported PyPI
# PyTorch (pipeline/install-torch.sh makes it): $CTMQ_TORCH_VENV, else
# ~/.cache/ctmq/pytorch-VERSION with VERSION from pipeline/pytorch-version.
ctmq_torch_venv() {
  echo "${CTMQ_TORCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/ctmq/pytorch-$(<"$CTMQ_ROOT/pipeline/pytorch-version")}"
}
