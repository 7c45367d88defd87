"""Loads one run directory (docs/run-directory.md) into plain Python objects.

Contract:
  - RUN/plan.tsv must exist and be well formed; it is the list of stages.
  - A stage is complete exactly when RUN/stages/STAGE/DONE exists. Stages that
    are not complete are reported with status "missing" (their files, possibly
    half-written, are not read), never as an error.
  - Files of complete stages (eval.json, metrics.jsonl, quant_report.json) are
    optional, but when present they must parse; a malformed one raises
    RunDirError naming the file (and line).
  - RUN/config.ini is optional: without it the run's seed is unknown and the
    run forms a seed group of its own (see grouping.py).
"""

import json
import math
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from .errors import RunDirError
from .ini import read_ini

PLAN_COLUMNS = ("index", "stage", "cycle", "step", "w_bits", "a_bits", "epochs", "init", "role")
ROLES = ("pretrain", "accurate", "step", "result", "baseline")
QUANT_REPORT_VERSION = 1
FULL_PRECISION_BITS = 32

STATUS_DONE = "done"  # DONE and eval.json
STATUS_NOT_EVALUATED = "not-evaluated"  # DONE, eval.json not written yet
STATUS_MISSING = "missing"  # not DONE (never started, running, or failed)


@dataclass
class PlannedStage:
    """One line of plan.tsv."""

    index: int
    name: str
    cycle: int
    step: int
    w_bits: int
    a_bits: int
    epochs: float
    init: str
    role: str

    @property
    def bits_label(self):
        """'FP' for full precision, 'W4A4' otherwise."""
        if self.w_bits >= FULL_PRECISION_BITS and self.a_bits >= FULL_PRECISION_BITS:
            return "FP"
        w = "32" if self.w_bits >= FULL_PRECISION_BITS else str(self.w_bits)
        a = "32" if self.a_bits >= FULL_PRECISION_BITS else str(self.a_bits)
        return "W%sA%s" % (w, a)

    @property
    def is_baseline(self):
        return self.role == "baseline"

    def key(self):
        """The parts of the line that define the experiment (for grouping)."""
        return (self.name, self.cycle, self.step, self.w_bits, self.a_bits, self.epochs,
                self.init, self.role)


@dataclass
class Stage:
    """A planned stage and what the run directory holds for it."""

    plan: PlannedStage
    status: str
    eval: Optional[dict] = None
    metrics: List[dict] = field(default_factory=list)
    quant_report: Optional[dict] = None

    @property
    def top1(self):
        return None if self.eval is None else self.eval.get("top1")

    @property
    def top5(self):
        return None if self.eval is None else self.eval.get("top5")

    @property
    def loss(self):
        return None if self.eval is None else self.eval.get("loss")

    @property
    def train_time_s(self):
        """elapsed_s of the last metrics record (training wall time), or None."""
        for record in reversed(self.metrics):
            if _is_number(record.get("elapsed_s")):
                return float(record["elapsed_s"])
        return None


@dataclass
class Run:
    path: str
    name: str
    stages: List[Stage]
    config: Optional[Dict[str, Dict[str, str]]]

    @property
    def seed(self):
        if self.config is None:
            return None
        return self.config.get("train", {}).get("seed")

    def stage(self, name):
        for s in self.stages:
            if s.plan.name == name:
                return s
        return None

    def cycles(self):
        """Cycle numbers 1..C present in the plan, in order."""
        return sorted({s.plan.cycle for s in self.stages if s.plan.cycle >= 1})

    def cycle_result(self, cycle):
        """The stage whose accuracy is cycle `cycle`'s result.

        The plan's `result` stage of that cycle; without one, the cycle's last
        stage (plans written before the `result` role existed).
        """
        in_cycle = [s for s in self.stages if s.plan.cycle == cycle and not s.plan.is_baseline]
        results = [s for s in in_cycle if s.plan.role == "result"]
        if results:
            return results[-1]
        return in_cycle[-1] if in_cycle else None

    def baseline(self, kind):
        """The `base-KIND-...` stage (kind: 'direct', 'step' or 'restart'), or None.

        A baseline made of several stages (the restart control
        base-restart-W1A1-1..N) is represented by its last stage, its result.
        """
        found = None
        for s in self.stages:
            if s.plan.name.startswith("base-%s-" % kind):
                found = s
        return found


def _is_number(value):
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def _parse_int(text, path, number, column):
    try:
        return int(text)
    except ValueError:
        raise RunDirError(path, "line %d: column %s: expected an integer, found %r"
                          % (number, column, text))


def read_plan(path):
    """Parses plan.tsv (version 1) into a list of PlannedStage in chain order."""
    if not os.path.isfile(path):
        raise RunDirError(path, "missing; a run directory holds the plan.tsv written by "
                          "`ctmq-plan --run-dir` (run pipeline/run-chain.sh or ctmq-plan first)")
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise RunDirError(path, "cannot read: %s" % e)
    header = None
    stages = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if line.startswith("#"):
            if header is None and "version" in line:
                words = line.replace("=", " ").replace(":", " ").split()
                i = words.index("version") if "version" in words else -1
                if 0 <= i < len(words) - 1 and words[i + 1].isdigit() and int(words[i + 1]) > 1:
                    raise RunDirError(path, "plan.tsv version %s is newer than this analysis "
                                      "understands (1); update analysis/" % words[i + 1])
            continue
        fields = line.split("\t")
        if header is None:
            header = fields
            missing = [c for c in PLAN_COLUMNS if c not in header]
            if missing:
                raise RunDirError(path, "line %d: header lacks column(s) %s (expected the "
                                  "tab-separated columns %s)"
                                  % (number, ", ".join(missing), " ".join(PLAN_COLUMNS)))
            continue
        if len(fields) != len(header):
            raise RunDirError(path, "line %d: %d tab-separated fields, the header has %d"
                              % (number, len(fields), len(header)))
        row = dict(zip(header, fields))
        try:
            epochs = float(row["epochs"])
        except ValueError:
            raise RunDirError(path, "line %d: column epochs: expected a number, found %r"
                              % (number, row["epochs"]))
        if row["role"] not in ROLES:
            raise RunDirError(path, "line %d: unknown role %r (expected one of %s)"
                              % (number, row["role"], ", ".join(ROLES)))
        if not row["stage"] or "/" in row["stage"]:
            raise RunDirError(path, "line %d: bad stage name %r" % (number, row["stage"]))
        stages.append(PlannedStage(
            index=_parse_int(row["index"], path, number, "index"), name=row["stage"],
            cycle=_parse_int(row["cycle"], path, number, "cycle"),
            step=_parse_int(row["step"], path, number, "step"),
            w_bits=_parse_int(row["w_bits"], path, number, "w_bits"),
            a_bits=_parse_int(row["a_bits"], path, number, "a_bits"), epochs=epochs,
            init=row["init"], role=row["role"]))
    if header is None:
        raise RunDirError(path, "empty: no header line (was ctmq-plan interrupted? rerun it)")
    names = [s.name for s in stages]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise RunDirError(path, "stage(s) listed twice: %s" % ", ".join(duplicates))
    return stages


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except OSError as e:
        raise RunDirError(path, "cannot read: %s" % e.strerror)
    except (ValueError, UnicodeDecodeError) as e:
        raise RunDirError(path, "not valid JSON (%s); rerun the step that writes it" % e)
    if not isinstance(value, dict):
        raise RunDirError(path, "expected a JSON object, found %s" % type(value).__name__)
    return value


def read_eval(path, stage_name):
    value = _read_json(path)
    for key in ("top1", "loss"):
        if key in value and value[key] is not None and not _is_number(value[key]):
            raise RunDirError(path, "%r must be a finite number, found %r" % (key, value[key]))
    if not _is_number(value.get("top1")):
        raise RunDirError(path, "lacks 'top1'; rerun ctmq-eval on stage %s" % stage_name)
    if not 0.0 <= value["top1"] <= 100.0:
        raise RunDirError(path, "top1 = %r is not a percentage in [0, 100]" % value["top1"])
    if "top5" in value and value["top5"] is not None and not _is_number(value["top5"]):
        raise RunDirError(path, "'top5' must be a number, found %r" % value["top5"])
    if value.get("stage", stage_name) != stage_name:
        raise RunDirError(path, "says stage %r but lies in the directory of stage %r"
                          % (value.get("stage"), stage_name))
    return value


def read_metrics(path, tolerate_torn_tail):
    """Parses metrics.jsonl's training records; each needs a numeric global_step and loss.

    Records of another "kind" (the in-stage test evaluations, "eval") are
    skipped; a record without "kind" is a training record (older files).
    With tolerate_torn_tail, an unparsable last line (a stage still being
    written) is dropped instead of raising.
    """
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
    except (OSError, UnicodeDecodeError) as e:
        raise RunDirError(path, "cannot read: %s" % e)
    while lines and not lines[-1].strip():
        lines.pop()
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as e:
            if tolerate_torn_tail and number == len(lines):
                break
            raise RunDirError(path, "line %d: not valid JSON (%s)" % (number, e))
        if not isinstance(record, dict):
            raise RunDirError(path, "line %d: expected a JSON object" % number)
        if record.get("kind", "train") != "train":
            continue
        for key in ("global_step", "loss"):
            if not _is_number(record.get(key)):
                raise RunDirError(path, "line %d: %r must be a finite number, found %r"
                                  % (number, key, record.get(key)))
        records.append(record)
    return records


def read_quant_report(path, stage_name):
    value = _read_json(path)
    version = value.get("version", 1)
    if not isinstance(version, int) or version > QUANT_REPORT_VERSION:
        raise RunDirError(path, "version %r is newer than this analysis understands (%d)"
                          % (version, QUANT_REPORT_VERSION))
    layers = value.get("layers")
    if not isinstance(layers, list):
        raise RunDirError(path, "'layers' must be a list (docs/run-directory.md)")
    for i, layer in enumerate(layers):
        if not isinstance(layer, dict) or not isinstance(layer.get("name"), str):
            raise RunDirError(path, "layers[%d]: expected an object with a 'name'" % i)
        if not _is_number(layer.get("relative_error")):
            raise RunDirError(path, "layers[%d] (%s): 'relative_error' must be a number"
                              % (i, layer["name"]))
        flip = layer.get("sign_flip_fraction")
        if flip is not None and not (_is_number(flip) and 0.0 <= flip <= 1.0):
            raise RunDirError(path, "layers[%d] (%s): 'sign_flip_fraction' must be null or in "
                              "[0, 1], found %r" % (i, layer["name"], flip))
    return value


def load_stage(root, planned):
    directory = os.path.join(root, "stages", planned.name)
    if not os.path.isfile(os.path.join(directory, "DONE")):
        return Stage(plan=planned, status=STATUS_MISSING)
    stage = Stage(plan=planned, status=STATUS_NOT_EVALUATED)
    eval_path = os.path.join(directory, "eval.json")
    if os.path.isfile(eval_path):
        stage.eval = read_eval(eval_path, planned.name)
        stage.status = STATUS_DONE
    metrics_path = os.path.join(directory, "metrics.jsonl")
    if os.path.isfile(metrics_path):
        stage.metrics = read_metrics(metrics_path, tolerate_torn_tail=False)
    report_path = os.path.join(directory, "quant_report.json")
    if os.path.isfile(report_path):
        stage.quant_report = read_quant_report(report_path, planned.name)
    return stage


def load_run(path, name=None):
    """Loads the run directory at `path`; `name` defaults to its base name."""
    if not os.path.isdir(path):
        raise RunDirError(path, "not a directory (expected a run directory)")
    root = os.path.normpath(path)
    plan = read_plan(os.path.join(root, "plan.tsv"))
    config_path = os.path.join(root, "config.ini")
    config = read_ini(config_path) if os.path.isfile(config_path) else None
    stages = [load_stage(root, p) for p in plan]
    return Run(path=root, name=name or os.path.basename(root), stages=stages, config=config)


def seed_dirs(path):
    """The seed-S run directories of `path` in seed order, when `path` holds none
    of its own (no plan.tsv) but was made by run-chain.sh or submit.sh --seeds;
    else []."""
    if os.path.isfile(os.path.join(path, "plan.tsv")) or not os.path.isdir(path):
        return []
    seeds = [d for d in os.listdir(path) if d.startswith("seed-") and d[5:].isdigit()
             and os.path.isfile(os.path.join(path, d, "plan.tsv"))]
    return [os.path.join(path, d) for d in sorted(seeds, key=lambda d: int(d[5:]))]


def load_runs(paths):
    """Loads several runs; a directory of seed-S runs (seed_dirs) stands for them,
    named PARENT/seed-S. Runs whose names collide are named by their paths."""
    roots, bases = [], []
    for p in paths:
        root = os.path.normpath(p)
        expanded = seed_dirs(root)
        for seed_root in expanded:
            roots.append(seed_root)
            bases.append(os.path.basename(root) + "/" + os.path.basename(seed_root))
        if not expanded:
            roots.append(root)
            bases.append(os.path.basename(root))
    runs = []
    for root, base in zip(roots, bases):
        name = base if bases.count(base) == 1 else root
        runs.append(load_run(root, name))
    return runs
