"""Writes small run directories in the format of docs/run-directory.md.

For edge cases only (malformed files, missing stages, seed statistics); the
real pipeline's output is tested by tests/integration/analysis_pipeline.sh.
"""

import json
import os
import sys

ANALYSIS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "analysis")
sys.path.insert(0, os.path.normpath(ANALYSIS_DIR))

PLAN_HEADER = "index\tstage\tcycle\tstep\tw_bits\ta_bits\tepochs\tinit\trole"


def chain_plan(cycles=2, k_start=2, k_target=1, epochs=1):
    """Schedule A with an FP accurate model and both baselines, as tuples
    (stage, cycle, step, w_bits, a_bits, epochs, init, role)."""
    rows = [("c0-fp", 0, 0, 32, 32, epochs, "none", "pretrain")]
    previous = "c0-fp"
    steps = 0
    for c in range(1, cycles + 1):
        if c > 1:
            rows.append(("c%d-fp" % c, c, 0, 32, 32, epochs, previous, "accurate"))
            previous = "c%d-fp" % c
            steps += 1
        for i, k in enumerate(range(k_start, k_target - 1, -1), start=1):
            name = "c%d-w%da%d" % (c, k, k)
            rows.append((name, c, i, k, k, epochs, previous, "result" if k == k_target else "step"))
            previous = name
            steps += 1
    rows.append(("base-direct-w%da%d" % (k_target, k_target), 0, 0, k_target, k_target,
                 epochs * steps, "c0-fp", "baseline"))
    rows.append(("base-step-w%da%d" % (k_target, k_target), 0, 0, k_target, k_target, epochs,
                 "c0-fp", "baseline"))
    return rows


def write_plan(run, rows, comment="# ctmq plan version 1 (docs/run-directory.md)"):
    os.makedirs(run, exist_ok=True)
    lines = [comment, PLAN_HEADER]
    for i, r in enumerate(rows):
        lines.append("\t".join(str(x) for x in (i,) + tuple(r)))
    with open(os.path.join(run, "plan.tsv"), "w") as f:
        f.write("\n".join(lines) + "\n")


def write_config(run, seed, extra=""):
    with open(os.path.join(run, "config.ini"), "w") as f:
        f.write("# run.ini\n[data]\ntrain-limit = 300\n[model]\narch = small-resnet\n"
                "[train]\nseed = %s\nthreads = 1\nbatch = 32\n[plan]\nschedule = a\n"
                "k-start = 2\nk-target = 1\ncycles = 2\n%s" % (seed, extra))


def write_stage(run, stage, top1, top5=None, loss=1.0, done=True, metrics_steps=3,
                quant_layers=None, elapsed=2.5):
    d = os.path.join(run, "stages", stage)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "metrics.jsonl"), "w") as f:
        for step in range(1, metrics_steps + 1):
            f.write(json.dumps({"stage": stage, "epoch": 0, "step": step, "global_step": step,
                                "loss": 2.0 / step, "accuracy": 10.0 * step,
                                "elapsed_s": elapsed * step / metrics_steps}) + "\n")
    if top1 is not None:
        value = {"stage": stage, "samples": 100, "top1": top1, "loss": loss}
        if top5 is not None:
            value["top5"] = top5
        with open(os.path.join(d, "eval.json"), "w") as f:
            json.dump(value, f)
    if quant_layers is not None:
        with open(os.path.join(d, "quant_report.json"), "w") as f:
            json.dump({"version": 1, "stage": stage, "init_stage": None, "layers": quant_layers},
                      f)
    if done:
        with open(os.path.join(d, "DONE"), "w") as f:
            f.write("{}\n")


def write_run(run, seed, top1_of, rows=None, **stage_kwargs):
    """A complete run whose stage top-1 is top1_of(stage name)."""
    rows = rows or chain_plan()
    write_plan(run, rows)
    write_config(run, seed)
    for r in rows:
        write_stage(run, r[0], top1_of(r[0]), top5=min(100.0, top1_of(r[0]) + 20), **stage_kwargs)
    return rows
