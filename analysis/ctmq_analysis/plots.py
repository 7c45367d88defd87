"""The PNG plots (matplotlib, Agg backend).

Every figure has a fixed pixel size (SIZES, width x height at DPI), so the
files are comparable across runs and the tests can check them.
"""

import os
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after use("Agg"))

from . import stats, tables  # noqa: E402

DPI = 100
SIZES = {  # pixels (width, height)
    "chain_accuracy": (1200, 600),
    "cycle_accuracy": (800, 500),
    "ctmq_vs_baselines": (1000, 550),
    "training_curves": (1400, 800),
    "quant_report": (1400, 800),
}
FP_COLOR = "0.35"


def _figure(kind, rows=1, sharex=False):
    width, height = SIZES[kind]
    fig, axes = plt.subplots(rows, 1, figsize=(width / DPI, height / DPI), dpi=DPI,
                             sharex=sharex, squeeze=False)
    return fig, [a[0] for a in axes]


def _save(fig, path):
    fig.savefig(path, dpi=DPI, format="png")
    plt.close(fig)
    return path


def safe_name(name):
    """A run or group name made safe for a file name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "run"


def cycle_color(cycle):
    return FP_COLOR if cycle <= 0 else plt.get_cmap("tab10")((cycle - 1) % 10)


def chain_accuracy(group, path):
    """Top-1 along the chain (plan order, baselines as horizontal lines).

    x = stage index, y = mean top-1 over the group's runs (error bar = sample
    std when n >= 2, each run a faint dot), colour = cycle, bits on top.
    """
    fig, (ax,) = _figure("chain_accuracy")
    first = group.runs[0]
    chain = [s.plan for s in first.stages if not s.plan.is_baseline]
    xs, means = [], []
    for p in chain:
        values = [r.stage(p.name).top1 for r in group.runs]
        n, mean, std = stats.mean_std(values)
        color = cycle_color(p.cycle)
        for v in values:
            if v is not None and len(group.runs) > 1:
                ax.plot(p.index, v, ".", color=color, alpha=0.35, markersize=5)
        if mean is None:
            ax.annotate("%s\nmissing" % p.bits_label, (p.index, 0), textcoords="offset points",
                        xytext=(0, 4), ha="center", fontsize=7, color="red")
            continue
        ax.errorbar(p.index, mean, yerr=std if std is not None else None, fmt="o",
                    color=color, capsize=3, markersize=6)
        ax.annotate(p.bits_label, (p.index, mean), textcoords="offset points", xytext=(0, 8),
                    ha="center", fontsize=7)
        xs.append(p.index)
        means.append(mean)
    if xs:
        ax.plot(xs, means, "-", color="0.6", linewidth=1, zorder=0)
    for kind, style in (("direct", "--"), ("step", ":")):
        stage = first.baseline(kind)
        if stage is None:
            continue
        _, mean, std = stats.mean_std(
            [r.baseline(kind).top1 if r.baseline(kind) else None for r in group.runs])
        if mean is None:
            continue
        label = "%s (%s)" % (stage.plan.name, "%.2f" % mean if std is None else
                             "%.2f ± %.2f" % (mean, std))
        ax.axhline(mean, linestyle=style, color="black", linewidth=1, label=label)
    for c in sorted({p.cycle for p in chain}):
        ax.plot([], [], "o", color=cycle_color(c), label="pretrain" if c == 0 else "cycle %d" % c)
    ax.set_xticks([p.index for p in chain])
    ax.set_xticklabels([p.name for p in chain], rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("test top-1 (%)")
    ax.set_ylim(0, 100)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title("%s: accuracy along the chain (%d run%s)"
                 % (group.name, len(group.runs), "" if len(group.runs) == 1 else "s"))
    fig.tight_layout()
    return _save(fig, path)


def cycle_accuracy(groups, path):
    """Each cycle's final low-bit top-1, one series per group (mean ± std)."""
    fig, (ax,) = _figure("cycle_accuracy")
    for g_index, group in enumerate(groups):
        cycles = sorted({c for r in group.runs for c in r.cycles()})
        offset = (g_index - (len(groups) - 1) / 2) * 0.08
        xs, means, stds = [], [], []
        for c in cycles:
            values = [r.cycle_result(c).top1 if r.cycle_result(c) else None for r in group.runs]
            n, mean, std = stats.mean_std(values)
            for v in values:
                if v is not None and len(group.runs) > 1:
                    ax.plot(c + offset, v, ".", color="C%d" % g_index, alpha=0.35)
            if mean is not None:
                xs.append(c + offset)
                means.append(mean)
                stds.append(std or 0.0)
        if xs:
            ax.errorbar(xs, means, yerr=stds, fmt="o-", capsize=3, color="C%d" % g_index,
                        label="%s (%d run%s)" % (group.name, len(group.runs),
                                                 "" if len(group.runs) == 1 else "s"))
    all_cycles = sorted({c for g in groups for r in g.runs for c in r.cycles()})
    ax.set_xticks(all_cycles)
    ax.set_xlabel("cycle")
    ax.set_ylabel("final low-bit test top-1 (%)")
    ax.grid(axis="y", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    ax.set_title("Final low-bit accuracy per cycle")
    fig.tight_layout()
    return _save(fig, path)


BASELINE_BARS = (("direct_top1", "direct baseline"), ("step_top1", "one-step baseline"),
                 ("staircase_top1", "staircase (cycle 1)"), ("ctmq_top1", "CTMQ (last cycle)"))


def ctmq_vs_baselines(groups, path):
    """Grouped bars per seed group: baselines, staircase, CTMQ (mean ± std, seeds as dots)."""
    fig, (ax,) = _figure("ctmq_vs_baselines")
    width = 0.8 / len(BASELINE_BARS)
    for b_index, (metric, label) in enumerate(BASELINE_BARS):
        for g_index, group in enumerate(groups):
            values = [dict(tables.run_metrics(r)).get(metric) for r in group.runs]
            n, mean, std = stats.mean_std(values)
            x = g_index + (b_index - (len(BASELINE_BARS) - 1) / 2) * width
            if mean is None:
                continue
            ax.bar(x, mean, width, yerr=std, capsize=3, color="C%d" % b_index, label=label)
            ax.annotate("%.1f" % mean, (x, mean), textcoords="offset points", xytext=(0, 10),
                        ha="center", fontsize=7)
            for v in values:
                if v is not None:
                    ax.plot(x, v, "k.", markersize=4)
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    if unique:
        ax.legend(unique.values(), unique.keys(), fontsize=8, loc="lower right")
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(["%s (n=%d)" % (g.name, len(g.runs)) for g in groups])
    ax.set_ylabel("test top-1 (%)")
    ax.set_ylim(0, 100)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title("CTMQ against its baselines (mean ± sample std over seeds; dots = runs)")
    fig.tight_layout()
    return _save(fig, path)


def training_curves(run, path):
    """Training loss and accuracy of every stage, stages laid end to end.

    x = global_step shifted by the steps of the earlier stages (each stage's
    ctmq-train counts its own steps), dotted lines mark stage boundaries.
    """
    fig, (ax_loss, ax_acc) = _figure("training_curves", rows=2, sharex=True)
    offset = 0.0
    boundaries = []
    for s in run.stages:
        if not s.metrics:
            continue
        steps = [float(m["global_step"]) for m in s.metrics]
        shift = offset if min(steps) < offset else 0.0  # counter restarted per stage
        xs = [x + shift for x in steps]
        color = cycle_color(s.plan.cycle)
        style = "--" if s.plan.is_baseline else "-"
        ax_loss.plot(xs, [m["loss"] for m in s.metrics], style, color=color, linewidth=1)
        acc = [(x, m["accuracy"]) for x, m in zip(xs, s.metrics)
               if isinstance(m.get("accuracy"), (int, float))]
        if acc:
            ax_acc.plot([a[0] for a in acc], [a[1] for a in acc], style, color=color,
                        linewidth=1)
        start = min(xs)
        boundaries.append((start, s.plan.name))
        offset = max(xs)
    for start, name in boundaries:
        for ax in (ax_loss, ax_acc):
            ax.axvline(start, color="0.8", linestyle=":", linewidth=0.8)
        ax_loss.annotate(name, (start, 1.0), xycoords=("data", "axes fraction"),
                         xytext=(2, -2), textcoords="offset points", rotation=90, va="top",
                         fontsize=6)
    for c in sorted({s.plan.cycle for s in run.stages if s.metrics}):
        ax_loss.plot([], [], "-", color=cycle_color(c),
                     label="pretrain / baselines (dashed)" if c == 0 else "cycle %d" % c)
    if boundaries:
        ax_loss.legend(fontsize=7, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=6,
                       frameon=False)
    else:
        ax_loss.text(0.5, 0.5, "no metrics.jsonl in any DONE stage", ha="center",
                     transform=ax_loss.transAxes)
    ax_loss.set_ylabel("training loss")
    ax_acc.set_ylabel("training accuracy\n(metrics.jsonl, as logged)")
    ax_acc.set_xlabel("step along the chain (global_step + steps of earlier stages)")
    fig.suptitle("%s: training curves per stage" % run.name)
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def quant_report(run, path):
    """Per layer: relative quantization error and sign-flip fraction, one line per stage
    (baselines dashed)."""
    reports = [s for s in run.stages if s.quant_report is not None]
    fig, (ax_err, ax_flip) = _figure("quant_report", rows=2, sharex=True)
    layer_names = []
    for s in reports:
        for layer in s.quant_report["layers"]:
            if layer["name"] not in layer_names:
                layer_names.append(layer["name"])
    position = {name: i for i, name in enumerate(layer_names)}
    for i, s in enumerate(reports):
        color = "C%d" % (i % 10)
        style = "--" if s.plan.is_baseline else "-"
        marker = "os^vD"[(i // 10) % 5]
        layers = s.quant_report["layers"]
        label = "%s (%s)" % (s.plan.name, s.plan.bits_label)
        ax_err.plot([position[l["name"]] for l in layers], [l["relative_error"] for l in layers],
                    style, marker=marker, color=color, markersize=3, linewidth=1, label=label)
        flips = [(position[l["name"]], l["sign_flip_fraction"]) for l in layers
                 if l.get("sign_flip_fraction") is not None]
        if flips:
            ax_flip.plot([f[0] for f in flips], [f[1] for f in flips], style, marker=marker,
                         color=color, markersize=3, linewidth=1)
    ax_err.set_ylabel("‖W_q − W‖ / ‖W‖")
    ax_flip.set_ylabel("sign-flip fraction\n(vs init stage)")
    ax_flip.set_xticks(range(len(layer_names)))
    ax_flip.set_xticklabels(layer_names, rotation=60, ha="right", fontsize=6)
    fig.suptitle("%s: per-layer quantization report" % run.name)
    if reports:
        ax_err.legend(fontsize=6, ncol=6, loc="lower left", bbox_to_anchor=(0.0, 1.0),
                      frameon=False)
    for ax in (ax_err, ax_flip):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def write_all(runs, groups, out_dir):
    """Writes every plot into out_dir; returns the paths written."""
    paths = []
    file_names = _unique_file_names([r.name for r in runs])
    for group in groups:
        paths.append(chain_accuracy(
            group, os.path.join(out_dir, "chain_accuracy_%s.png" % safe_name(group.name))))
    paths.append(cycle_accuracy(groups, os.path.join(out_dir, "cycle_accuracy.png")))
    paths.append(ctmq_vs_baselines(groups, os.path.join(out_dir, "ctmq_vs_baselines.png")))
    for run, file_name in zip(runs, file_names):
        paths.append(training_curves(
            run, os.path.join(out_dir, "training_curves_%s.png" % file_name)))
        if any(s.quant_report is not None for s in run.stages):
            paths.append(quant_report(run, os.path.join(out_dir, "quant_report_%s.png" % file_name)))
    return paths


def _unique_file_names(names):
    """safe_name of each name, suffixed -2, -3, ... where two would collide."""
    out = []
    for name in names:
        base = safe_name(name)
        candidate, k = base, 1
        while candidate in out:
            k += 1
            candidate = "%s-%d" % (base, k)
        out.append(candidate)
    return out
