"""The tables: every stage of every run, and the per-run / per-seed-group summary.

Each table is a list of rows (dicts with the COLUMNS keys) written both as
CSV (numbers at full precision, empty cell = missing) and as Markdown
(numbers rounded, "-" = missing).
"""

import csv

from . import stats

STAGE_COLUMNS = ("run", "index", "stage", "cycle", "step", "role", "bits", "w_bits", "a_bits",
                 "epochs", "init", "status", "top1", "top5", "loss", "train_time_s")

# summary.csv: one row per (scope, group, run, metric).
#   scope "run":   value = the run's number; n = 1; std empty
#   scope "seeds": value = mean over the group's runs that have it; n = how
#                  many; std = sample standard deviation (empty when n < 2)
SUMMARY_COLUMNS = ("scope", "group", "run", "seed", "metric", "n", "value", "std")


def stage_rows(runs):
    rows = []
    for run in runs:
        for s in run.stages:
            p = s.plan
            rows.append({
                "run": run.name, "index": p.index, "stage": p.name, "cycle": p.cycle,
                "step": p.step, "role": p.role, "bits": p.bits_label, "w_bits": p.w_bits,
                "a_bits": p.a_bits, "epochs": p.epochs, "init": p.init, "status": s.status,
                "top1": s.top1, "top5": s.top5, "loss": s.loss, "train_time_s": s.train_time_s,
            })
    return rows


def run_metrics(run):
    """The summary numbers of one run, as an ordered list of (metric, value).

    cC_top1           top-1 of cycle C's result stage (its final low-bit model)
    staircase_top1    cycle 1's result: the staircase without cycles
    ctmq_top1         the last cycle's result: CTMQ's final model
    direct_top1       base-direct-*: the same low-bit model trained directly
                      for the chain's epoch budget
    step_top1         base-step-*: trained directly for one step's epochs
    restart_top1      base-restart-*: the restart control's last stage (the
                      target depth with CTMQ's epochs and restarts)
    ctmq_minus_direct, ctmq_minus_staircase, ctmq_minus_step,
    ctmq_minus_restart: differences
                      (percentage points) within the run
    Values are None where a stage is missing.
    """
    out = []
    cycles = run.cycles()
    for c in cycles:
        result = run.cycle_result(c)
        out.append(("c%d_top1" % c, result.top1 if result else None))
    staircase = run.cycle_result(1).top1 if 1 in cycles else None
    ctmq = run.cycle_result(cycles[-1]).top1 if cycles else None
    direct = run.baseline("direct")
    step = run.baseline("step")
    restart_stage = run.baseline("restart")
    direct = direct.top1 if direct else None
    step = step.top1 if step else None
    restart = restart_stage.top1 if restart_stage else None
    out += [("staircase_top1", staircase), ("ctmq_top1", ctmq), ("direct_top1", direct),
            ("step_top1", step)]
    if restart_stage is not None:
        out.append(("restart_top1", restart))
    out += [("ctmq_minus_direct", _minus(ctmq, direct)),
            ("ctmq_minus_staircase", _minus(ctmq, staircase)),
            ("ctmq_minus_step", _minus(ctmq, step))]
    if restart_stage is not None:
        out.append(("ctmq_minus_restart", _minus(ctmq, restart)))
    return out


def _minus(a, b):
    return None if a is None or b is None else a - b


def chain_epochs(run):
    """Epochs of the cycles (cycle >= 1, no baselines, no pretraining)."""
    return sum(s.plan.epochs for s in run.stages if s.plan.cycle >= 1 and not s.plan.is_baseline)


def summary_rows(groups):
    rows = []
    for group in groups:
        per_run = [(run, run_metrics(run)) for run in group.runs]
        for run, metrics in per_run:
            for metric, value in metrics:
                rows.append({"scope": "run", "group": group.name, "run": run.name,
                             "seed": run.seed, "metric": metric,
                             "n": 1 if value is not None else 0, "value": value, "std": None})
        metric_names = []
        for _, metrics in per_run:
            for metric, _ in metrics:
                if metric not in metric_names:
                    metric_names.append(metric)
        for metric in metric_names:
            values = [dict(metrics).get(metric) for _, metrics in per_run]
            n, mean, std = stats.mean_std(values)
            rows.append({"scope": "seeds", "group": group.name, "run": None, "seed": None,
                         "metric": metric, "n": n, "value": mean, "std": std})
    return rows


def write_csv(path, columns, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else _csv_value(row[c]) for c in columns])


def _csv_value(value):
    if isinstance(value, float):
        return repr(value)
    return str(value)


def fmt(value, digits=2):
    """Markdown cell text: '-' for missing, numbers rounded."""
    if value is None:
        return "-"
    if isinstance(value, float):
        if value.is_integer() and digits == 0:
            return "%d" % value
        return "%.*f" % (digits, value)
    return str(value)


def fmt_epochs(value):
    return "%d" % value if float(value).is_integer() else "%g" % value


def markdown_table(headers, rows):
    """rows: lists of cell strings."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    return "\n".join(lines) + "\n"


def stages_markdown(rows):
    headers = ["run", "#", "stage", "cycle", "step", "role", "bits", "epochs", "init", "status",
               "top-1 %", "top-5 %", "loss", "train s"]
    cells = []
    for r in rows:
        cells.append([r["run"], str(r["index"]), r["stage"], str(r["cycle"]), str(r["step"]),
                      r["role"], r["bits"], fmt_epochs(r["epochs"]), r["init"], r["status"],
                      fmt(r["top1"]), fmt(r["top5"]), fmt(r["loss"], 4),
                      fmt(r["train_time_s"], 1)])
    return ("# Stages\n\nEvery planned stage of every run, in chain order. status: done "
            "(DONE and eval.json), not-evaluated (DONE, no eval.json yet), missing (not DONE). "
            "top-1/top-5/loss: eval.json on the test split; train s: elapsed_s of the last "
            "metrics.jsonl record.\n\n" + markdown_table(headers, cells))


def summary_markdown(groups, rows, describe):
    out = ["# Summary\n",
           "Top-1 in %, differences in percentage points. `staircase` = cycle 1's result (the "
           "staircase without cycles), `CTMQ` = the last cycle's result, `direct` = "
           "base-direct (same low-bit model trained directly from the pretrained model for the "
           "chain's epoch budget), `step` = base-step (trained directly for one step's epochs). "
           "Across seeds: mean ± sample standard deviation (n - 1) over the runs that have the "
           "number, n = how many; differences are paired within each run (same seed) before "
           "averaging. Runs are grouped when they differ only by seed (docs/analysis.md).\n"]
    by_group = {}
    for r in rows:
        by_group.setdefault(r["group"], []).append(r)
    for group in groups:
        first = group.runs[0]
        members = ", ".join("%s (seed %s)" % (r.name, r.seed if r.seed is not None else "?")
                            for r in group.runs)
        direct = first.baseline("direct")
        budget = "chain epochs (cycles) %s" % fmt_epochs(chain_epochs(first))
        if direct is not None:
            budget += ", direct baseline epochs %s" % fmt_epochs(direct.plan.epochs)
        out.append("\n## %s: %s\n\nRuns: %s. %s.\n\n" % (group.name, describe(first), members,
                                                         budget))
        group_rows = by_group.get(group.name, [])
        metrics = []
        for r in group_rows:
            if r["metric"] not in metrics:
                metrics.append(r["metric"])
        headers = ["run", "seed"] + [_metric_header(m) for m in metrics]
        cells = []
        for run in group.runs:
            values = {r["metric"]: r["value"] for r in group_rows
                      if r["scope"] == "run" and r["run"] == run.name}
            cells.append([run.name, str(run.seed) if run.seed is not None else "?"] +
                         [fmt(values.get(m)) for m in metrics])
        seeds = {r["metric"]: r for r in group_rows if r["scope"] == "seeds"}
        mean_cells = ["mean ± std", "all"]
        for m in metrics:
            r = seeds[m]
            if r["value"] is None:
                mean_cells.append("-")
            elif r["std"] is None:
                mean_cells.append("%s (n=%d)" % (fmt(r["value"]), r["n"]))
            else:
                mean_cells.append("%s ± %s (n=%d)" % (fmt(r["value"]), fmt(r["std"]), r["n"]))
        cells.append(mean_cells)
        out.append(markdown_table(headers, cells))
    return "".join(out)


def _metric_header(metric):
    names = {"staircase_top1": "staircase", "ctmq_top1": "CTMQ", "direct_top1": "direct",
             "step_top1": "step", "ctmq_minus_direct": "CTMQ - direct",
             "ctmq_minus_staircase": "CTMQ - staircase", "ctmq_minus_step": "CTMQ - step"}
    if metric in names:
        return names[metric]
    if metric.startswith("c") and metric.endswith("_top1"):
        return "cycle " + metric[1:-5]
    return metric
