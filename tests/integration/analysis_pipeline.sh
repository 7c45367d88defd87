#!/usr/bin/env bash
# analyze.py on a run directory made by the real pipeline: Fashion-MNIST shards
# (ctmq-shard), a tiny two-cycle 2 -> 1 bit chain with both baselines
# (pipeline/run-chain.sh: ctmq-plan, ctmq-train, ctmq-eval), then the analysis
# and checks of its outputs: every planned stage is in the table, DONE, with a
# test top-1 in [0, 100]; quant_report.json of every stage (ctmq-eval
# --quant-report) is plotted; every PNG is valid and of the documented size; a
# copy of the run with its last stage undone shows that stage as missing.
# Env: CTMQ_BIN_DIR (executables), CTMQ_SOURCE_DIR, CTMQ_FASHION_MNIST_DIR.
set -euo pipefail
test_name=analysis_pipeline
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
python=${CTMQ_PYTHON:-/usr/bin/python3}
require_bins ctmq-shard ctmq-plan ctmq-train ctmq-eval
export MPLBACKEND=Agg MPLCONFIGDIR=$tmp/mpl

# Shards of the full Fashion-MNIST files; the chain uses only the first few
# hundred images through train-limit / test-limit.
shard_fashion_mnist "$tmp/shards"
write_run_ini "$tmp/run.ini" "$tmp/shards" data.train-limit=256 data.test-limit=200 model.width=8 \
  train.seed=1 train.log-every=2 eval.threads= eval.quant-report=true plan.schedule=a \
  plan.k-start=2 plan.k-target=1 plan.cycles=2 plan.epochs-pretrain=1 plan.epochs-accurate=1 \
  plan.epochs-step=1 plan.baselines=true

run=$tmp/runs/tiny
start=$(date +%s)
if ! "$src/pipeline/run-chain.sh" "$tmp/run.ini" "$run" >"$tmp/chain.log" 2>&1; then
  tail -n 40 "$tmp/chain.log" >&2
  echo "analysis_pipeline: pipeline/run-chain.sh failed" >&2
  exit 1
fi
echo "analysis_pipeline: chain finished in $(($(date +%s) - start)) s"

# A second run: the same chain with its last stage not DONE (a partial run).
cp -r "$run" "$tmp/runs/partial"
last=$(awk -F'\t' '!/^#/ && $1 != "index" { s = $2 } END { print s }' "$run/plan.tsv")
rm "$tmp/runs/partial/stages/$last/DONE"

out=$tmp/out
"$python" "$src/analysis/analyze.py" "$run" "$tmp/runs/partial" --out "$out"

"$python" - "$src" "$run" "$out" "$last" <<'EOF'
import csv, json, os, sys
src, run, out, last = sys.argv[1:]
sys.path.insert(0, os.path.join(src, "tests", "analysis"))
import png_check
from plots_test import EXPECTED

plan = [l.split("\t")[1] for l in open(os.path.join(run, "plan.tsv")).read().splitlines()
        if l and not l.startswith("#") and not l.startswith("index\t")]
assert len(plan) >= 8, "tiny chain should have c0, 2 cycles and 2 baselines: %s" % plan
rows = list(csv.DictReader(open(os.path.join(out, "stages.csv"))))
full = {r["stage"]: r for r in rows if r["run"] == "tiny"}
partial = {r["stage"]: r for r in rows if r["run"] == "partial"}
assert sorted(full) == sorted(plan), "stages.csv %s != plan %s" % (sorted(full), plan)
for stage in plan:
    r = full[stage]
    assert r["status"] == "done", "%s: status %s" % (stage, r["status"])
    top1 = float(r["top1"])
    assert 0.0 <= top1 <= 100.0, "%s: top1 %s" % (stage, top1)
    assert float(r["train_time_s"]) > 0, "%s: no training time" % stage
    assert partial[stage]["status"] == ("missing" if stage == last else "done"), stage
    if stage != last:
        assert partial[stage]["top1"] == r["top1"], stage
assert partial[last]["top1"] == "", "a missing stage has no top-1"

summary = list(csv.DictReader(open(os.path.join(out, "summary.csv"))))
ctmq = [r for r in summary if r["scope"] == "run" and r["run"] == "tiny"
        and r["metric"] == "ctmq_top1"][0]
assert float(ctmq["value"]) == float(full["c2-w1a1"]["top1"]), ctmq

pngs = {"chain_accuracy_G1.png": "chain_accuracy", "cycle_accuracy.png": "cycle_accuracy",
        "ctmq_vs_baselines.png": "ctmq_vs_baselines",
        "training_curves_tiny.png": "training_curves",
        "training_curves_partial.png": "training_curves"}
# [eval] quant-report = true: ctmq-eval wrote quant_report.json for every stage.
for stage in plan:
    report = json.load(open(os.path.join(run, "stages", stage, "quant_report.json")))
    assert report["stage"] == stage and report["layers"], stage
    for layer in report["layers"]:
        assert layer["relative_error"] >= 0, (stage, layer)
pngs["quant_report_tiny.png"] = "quant_report"
for name, kind in sorted(pngs.items()):
    size = png_check.png_size(os.path.join(out, name))
    assert size == EXPECTED[kind], "%s: %s != %s" % (name, size, EXPECTED[kind])
print("analysis_pipeline: %d stages, %d plots checked; CTMQ top-1 %s" %
      (len(plan), len(pngs), ctmq["value"]))
EOF
