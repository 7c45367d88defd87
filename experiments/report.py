#!/usr/bin/env python3
"""Report of a pre-registered experiment run by experiments/run-arms.sh.

Usage: /usr/bin/python3 experiments/report.py EXPERIMENT_DIR OUT_DIR

Reads EXPERIMENT_DIR/arms.json and every OUT_DIR/seedS/RUN/stages/STAGE/eval.json;
writes OUT_DIR/report.md (also printed) and OUT_DIR/report.png.

For each arm: top-1 over seeds (mean, sample std, 95 % t interval). For each
comparison A - B: the differences paired within seeds, their mean, the 95 %
t interval and the decision of arms.json's pre-registered rule:
  win           the interval lies above 0 ("win, beyond margin": above +margin)
  loss          the interval lies below 0 ("loss, beyond margin": below -margin)
  tie           the interval lies inside [-margin, +margin]
  inconclusive  otherwise
Only seeds where both arms are evaluated are paired.
"""

import glob
import json
import math
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "analysis"))
from ctmq_analysis import stats  # noqa: E402

# Two-sided 95 % quantiles of Student's t, t_{0.975, df} for df = 1..30
# (standard table values, e.g. NIST/SEMATECH e-Handbook 1.3.6.7.2); the normal 1.96 beyond.
T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
        2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def t975(df):
    return T975[df - 1] if df <= len(T975) else 1.96


def interval(values):
    """(n, mean, std, half_width) of a list of numbers; half_width None when n < 2."""
    n, mean, std = stats.mean_std(values)
    if n < 2:
        return n, mean, std, None
    return n, mean, std, t975(n - 1) * std / math.sqrt(n)


def decide(mean, half, margin):
    if half is None:
        return "inconclusive (fewer than 2 seeds)"
    lo, hi = mean - half, mean + half
    if lo > 0:
        return "win, beyond margin" if lo > margin else "win"
    if hi < 0:
        return "loss, beyond margin" if hi < -margin else "loss"
    if lo >= -margin and hi <= margin:
        return "tie"
    return "inconclusive"


def top1(out, seed, run, stage):
    path = os.path.join(out, "seed%d" % seed, run, "stages", stage, "eval.json")
    try:
        with open(path, encoding="utf-8") as f:
            return float(json.load(f)["top1"])
    except (OSError, ValueError, KeyError):
        return None


def main(argv):
    if len(argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    exp, out = argv[1], argv[2]
    with open(os.path.join(exp, "arms.json"), encoding="utf-8") as f:
        spec = json.load(f)
    seeds = sorted(int(os.path.basename(p)[4:]) for p in glob.glob(os.path.join(out, "seed*"))
                   if os.path.basename(p)[4:].isdigit())
    values = {name: {s: top1(out, s, a["run"], a["stage"]) for s in seeds}
              for name, a in spec["arms"].items()}
    margin = float(spec.get("tie_margin", 0.5))
    lines = ["# %s" % spec.get("title", os.path.basename(os.path.abspath(exp))), "",
             "Seeds found: %s. Top-1 on the test set (%%), BatchNorm re-estimated." %
             ", ".join(map(str, seeds)), "",
             "| arm | stage | n | mean | std | 95 % CI |", "|---|---|---|---|---|---|"]
    for name, a in spec["arms"].items():
        n, mean, std, half = interval(list(values[name].values()))
        lines.append("| %s | %s/%s | %d | %s | %s | %s |" % (
            name, a["run"], a["stage"], n, "-" if mean is None else "%.2f" % mean,
            "-" if std is None else "%.2f" % std,
            "-" if half is None else "[%.2f, %.2f]" % (mean - half, mean + half)))
    lines += ["", "Paired differences A - B (percentage points), decision rule: win if the 95 %% "
              "CI is above 0 (beyond margin: above +%.1f), loss if below 0 (beyond margin: below "
              "-%.1f), tie if inside +-%.1f, else inconclusive." % (margin, margin, margin),
              "", "| A - B | n | mean | std | 95 % CI | half-width | decision |",
              "|---|---|---|---|---|---|---|"]
    diffs = []
    for a, b in spec["comparisons"]:
        d = [values[a][s] - values[b][s] for s in seeds
             if values[a][s] is not None and values[b][s] is not None]
        n, mean, std, half = interval(d)
        diffs.append((a, b, d, mean, half))
        primary = " (primary)" if [a, b] == spec.get("primary") else ""
        lines.append("| %s - %s%s | %d | %s | %s | %s | %s | %s |" % (
            a, b, primary, n, "-" if mean is None else "%+.2f" % mean,
            "-" if std is None else "%.2f" % std,
            "-" if half is None else "[%+.2f, %+.2f]" % (mean - half, mean + half),
            "-" if half is None else "%.2f" % half,
            decide(mean, half, margin) if mean is not None else "no data"))
    text = "\n".join(lines) + "\n"
    with open(os.path.join(out, "report.md"), "w", encoding="utf-8") as f:
        f.write(text)
    sys.stdout.write(text)
    plot(diffs, margin, os.path.join(out, "report.png"))
    return 0


def plot(diffs, margin, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(9, 0.7 * len(diffs) + 1.6))
    for i, (a, b, d, mean, half) in enumerate(diffs):
        y = len(diffs) - 1 - i
        ax.scatter(d, [y] * len(d), color="0.6", s=14, zorder=2)
        if mean is not None and half is not None:
            ax.errorbar([mean], [y], xerr=[[half], [half]], fmt="o", color="C0", capsize=4,
                        zorder=3)
    ax.axvline(0, color="k", lw=0.8)
    ax.axvspan(-margin, margin, color="C2", alpha=0.12, label="tie zone +-%.1f" % margin)
    ax.set_yticks(range(len(diffs)))
    ax.set_yticklabels(["%s - %s" % (a, b) for a, b, _, _, _ in reversed(diffs)])
    ax.set_xlabel("paired difference of top-1 (percentage points); dots = seeds, bar = 95 % CI")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
