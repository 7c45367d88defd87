#!/usr/bin/env bash
# Runs a pre-registered experiment: every arm of EXPERIMENT_DIR for every seed,
# with the local runner, then its report (experiments/report.py).
#
# Usage: experiments/run-arms.sh EXPERIMENT_DIR OUT_DIR --seeds 1,2,3 [--jobs J]
#   EXPERIMENT_DIR  holds arms/*.ini (run configs whose [train] seed line is
#                   replaced per seed) and arms.json (arms, comparisons, rule)
#   OUT_DIR         OUT_DIR/seedS/ARM is the run directory of arm ARM, seed S
#   --seeds         comma-separated seeds
#   --jobs J        seeds run J at a time (default 2), one thread per run
# The first arm in arms.json's "order" trains c0-fp; every other arm of the
# same seed starts from a copy of that c0-fp (the arms share their
# full-precision model, so the comparison is paired). Rerunning continues
# where it stopped: DONE stages are skipped.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
usage() { sed -n '2,15p' "$0"; }
[[ ${1:-} == -h || ${1:-} == --help ]] && { usage; exit 0; }
(($# >= 4)) || { usage >&2; exit 2; }
exp=$(cd "$1" && pwd) out=$2
shift 2
seeds='' jobs=2
while (($#)); do
  case $1 in
    --seeds) seeds=${2:?--seeds needs a list}; shift 2 ;;
    --jobs) jobs=${2:?--jobs needs a number}; shift 2 ;;
    *) echo "run-arms: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[[ $seeds =~ ^[0-9]+(,[0-9]+)*$ ]] || { echo "run-arms: --seeds must be like 1,2,3" >&2; exit 2; }
[[ -f $exp/arms.json ]] || { echo "run-arms: $exp/arms.json missing" >&2; exit 1; }
mapfile -t order < <(/usr/bin/python3 -c 'import json,sys; print("\n".join(json.load(open(sys.argv[1]))["order"]))' "$exp/arms.json")
for arm in "${order[@]}"; do
  [[ -f $exp/arms/$arm.ini ]] || { echo "run-arms: $exp/arms/$arm.ini missing" >&2; exit 1; }
done
mkdir -p "$out"
out=$(cd "$out" && pwd)

run_seed() {
  local seed=$1 arm first=${order[0]} cfg run
  for arm in "${order[@]}"; do
    cfg=$out/configs/seed$seed-$arm.ini
    run=$out/seed$seed/$arm
    mkdir -p "$out/configs" "$run"
    sed "s/^seed = .*/seed = $seed/" "$exp/arms/$arm.ini" >"$cfg"
    if [[ $arm != "$first" && ! -d $run/stages/c0-fp ]]; then
      mkdir -p "$run/stages"
      cp -a "$out/seed$seed/$first/stages/c0-fp" "$run/stages/"
    fi
    (cd "$root" && bash pipeline/run-chain.sh "$cfg" "$run") >"$run.log" 2>&1 ||
      { echo "run-arms: seed $seed arm $arm failed; see $run.log" >&2; return 1; }
    echo "run-arms: seed $seed arm $arm done"
  done
}
failed=0
for seed in ${seeds//,/ }; do
  while (($(jobs -rp | wc -l) >= jobs)); do wait -n || failed=1; done
  run_seed "$seed" &
done
while (($(jobs -rp | wc -l) > 0)); do wait -n || failed=1; done
((failed == 0)) || { echo "run-arms: some runs failed (see above)" >&2; exit 1; }
/usr/bin/python3 "$root/experiments/report.py" "$exp" "$out"
