#!/usr/bin/env bash
# Prints a table of every stage of a run directory in plan order: bits, epochs,
# init, status and test top-1 / top-5 / loss from eval.json; under a stage, its
# what-if evaluations at other bit depths (ctmq-eval --w-bits/--a-bits,
# eval-wKaK.json: the same weights, no training).
# Usage: pipeline/summarize.sh RUN_DIR
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "$0")/common.sh"
run=${1:?usage: summarize.sh RUN_DIR}
[[ -f $run/plan.tsv ]] || ctmq_die "$run/plan.tsv not found; is $run a run directory?"
python3 - "$run" <<'PY'
import glob, json, os, sys
run = sys.argv[1]
rows = [l.rstrip("\n").split("\t") for l in open(os.path.join(run, "plan.tsv")) if not l.startswith("#")]
header, rows = rows[0], rows[1:]
col = {name: i for i, name in enumerate(header)}
def bits(w, a):
    return "FP" if w == a == "32" else "W%sA%s" % (w, a)
print("%-18s %-6s %-8s %6s  %-18s %-13s %7s %7s %7s" % (
    "stage", "cycle", "bits", "epochs", "init", "status", "top1%", "top5%", "loss"))
for r in rows:
    stage_dir = os.path.join(run, "stages", r[col["stage"]])
    status, top1, top5, loss = "missing", "-", "-", "-"
    if os.path.exists(os.path.join(stage_dir, "DONE")):
        status = "not-evaluated"
        try:
            e = json.load(open(os.path.join(stage_dir, "eval.json")))
            status = "done"
            top1 = "%.2f" % e["top1"]
            top5 = "%.2f" % e["top5"] if e.get("top5") is not None else "-"
            loss = "%.4f" % e["loss"]
        except (OSError, ValueError, KeyError):
            pass
    init = r[col["init"]]
    print("%-18s %-6s %-8s %6s  %-18s %-13s %7s %7s %7s" % (
        r[col["stage"]], r[col["cycle"]], bits(r[col["w_bits"]], r[col["a_bits"]]),
        r[col["epochs"]], init if len(init) <= 18 else init[:15] + "...", status, top1, top5, loss))
    for path in sorted(glob.glob(os.path.join(stage_dir, "eval-w*a*.json"))):
        try:
            e = json.load(open(path))
        except (OSError, ValueError):
            continue
        tag = os.path.basename(path)[len("eval-"):-len(".json")].upper()
        print("%-18s %-6s %-8s %6s  %-18s %-13s %7s %7s %7s" % (
            "  same weights", "", tag, "0", "(no training)", "what-if", "%.2f" % e["top1"],
            "%.2f" % e["top5"] if e.get("top5") is not None else "-", "%.4f" % e["loss"]))
PY
