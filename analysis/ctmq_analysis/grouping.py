"""Groups runs that differ only by their seed.

Rule (also in docs/analysis.md): two runs are in the same group exactly when
  - their plan.tsv stages are identical (name, cycle, step, bits, epochs,
    init, role, in order), and
  - their RUN/config.ini are identical as key/value sets after dropping
    [train] seed and the options that cannot change the result
    (IGNORED_KEYS: threads, loader-workers, checkpoint-every, log-every,
    requeue).
Whitespace, comments and key order do not matter. A run without config.ini
forms a group of its own.
"""

from dataclasses import dataclass
from typing import List

SEED_KEY = ("train", "seed")
IGNORED_KEYS = {("train", "threads"), ("train", "loader-workers"), ("train", "checkpoint-every"),
                ("train", "log-every"), ("train", "requeue")}


@dataclass
class Group:
    name: str  # G1, G2, ... in order of first appearance
    runs: List  # run_dir.Run, in the order given


def group_key(run):
    plan = tuple(s.plan.key() for s in run.stages)
    if run.config is None:
        return ("no-config", run.path)
    config = tuple(sorted(
        (section, key, value) for section, keys in run.config.items()
        for key, value in keys.items()
        if (section, key) != SEED_KEY and (section, key) not in IGNORED_KEYS))
    return (plan, config)


def group_runs(runs):
    groups = {}
    order = []
    for run in runs:
        key = group_key(run)
        if key not in groups:
            groups[key] = Group(name="G%d" % (len(order) + 1), runs=[])
            order.append(key)
        groups[key].runs.append(run)
    return [groups[k] for k in order]


def describe(run):
    """A short description of a run's experiment from its config, e.g.
    'resnet20, schedule a, 4->1 bits, 3 cycles'."""
    if run.config is None:
        return "no config.ini"
    model = run.config.get("model", {})
    plan = run.config.get("plan", {})
    parts = []
    if "arch" in model:
        parts.append(model["arch"] + (" w%s" % model["width"] if "width" in model else ""))
    if "schedule" in plan:
        parts.append("schedule " + plan["schedule"])
    if "k-start" in plan and "k-target" in plan:
        parts.append("%s->%s bits" % (plan["k-start"], plan["k-target"]))
    if "cycles" in plan:
        parts.append("%s cycles" % plan["cycles"])
    return ", ".join(parts) if parts else "config.ini without [model]/[plan]"
