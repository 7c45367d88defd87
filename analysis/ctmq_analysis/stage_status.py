"""The pipeline's plain-text view of a run directory (pipeline/summarize.sh),
its one-number view of an eval.json (ctmq_top1 in pipeline/common.sh), and
the recorded training speed and manifest image count that Slurm's time limits
use (slurm/time-limits.sh).

Contract: the table and top1 never raise for the run's stage files. A stage without DONE is
"missing"; a DONE stage whose eval.json is absent or does not parse is
"not-evaluated"; a what-if evaluation (eval-wKaK.json) that does not parse is
left out. Only plan.tsv must exist and be readable (the caller checks that).
Standard library only: it runs under any python3.
"""

import glob
import json
import os
import statistics

ROW_FORMAT = "%-18s %-6s %-8s %6s  %-18s %-13s %7s %7s %7s"
HEADER = ("stage", "cycle", "bits", "epochs", "init", "status", "top1%", "top5%", "loss")


def _bits(w, a):
    return "FP" if w == a == "32" else "W%sA%s" % (w, a)


def _top5(e):
    return "%.2f" % e["top5"] if e.get("top5") is not None else "-"


def _plan_rows(run):
    """plan.tsv as (column index by name, rows of strings); '#' lines skipped."""
    with open(os.path.join(run, "plan.tsv")) as f:
        rows = [line.rstrip("\n").split("\t") for line in f if not line.startswith("#")]
    header, rows = rows[0], rows[1:]
    return {name: i for i, name in enumerate(header)}, rows


def stage_table_lines(run):
    """The table's lines, in plan order: one per stage, then one per what-if
    evaluation of that stage (sorted by file name)."""
    col, rows = _plan_rows(run)
    lines = [ROW_FORMAT % HEADER]
    for r in rows:
        stage_dir = os.path.join(run, "stages", r[col["stage"]])
        status, top1, top5, loss = "missing", "-", "-", "-"
        if os.path.exists(os.path.join(stage_dir, "DONE")):
            status = "not-evaluated"
            try:
                with open(os.path.join(stage_dir, "eval.json")) as f:
                    e = json.load(f)
                status = "done"
                top1 = "%.2f" % e["top1"]
                top5 = _top5(e)
                loss = "%.4f" % e["loss"]
            except (OSError, ValueError, KeyError):
                pass
        init = r[col["init"]]
        lines.append(ROW_FORMAT % (
            r[col["stage"]], r[col["cycle"]], _bits(r[col["w_bits"]], r[col["a_bits"]]),
            r[col["epochs"]], init if len(init) <= 18 else init[:15] + "...", status, top1, top5,
            loss))
        for path in sorted(glob.glob(os.path.join(stage_dir, "eval-w*a*.json"))):
            try:
                with open(path) as f:
                    e = json.load(f)
            except (OSError, ValueError):
                continue
            tag = os.path.basename(path)[len("eval-"):-len(".json")].upper()
            lines.append(ROW_FORMAT % (
                "  same weights", "", tag, "0", "(no training)", "what-if", "%.2f" % e["top1"],
                _top5(e), "%.4f" % e["loss"]))
    return lines


def top1_text(eval_json):
    """Top-1 (percent) with 2 decimals; '-' when the file does not exist, '?'
    when it cannot be read or holds no top1."""
    if not os.path.isfile(eval_json):
        return "-"
    try:
        with open(eval_json) as f:
            return "%.2f" % json.load(f)["top1"]
    except (OSError, ValueError, KeyError, TypeError):
        return "?"


def recorded_speed_text(metrics_jsonl, ranks):
    """The median images_per_s of the metrics.jsonl records with `ranks` ranks
    and a positive speed, with 6 significant digits ("%.6g"); "" when there
    are none. A line that does not parse (cut short by a killed job) is
    skipped; an unreadable file or a record of another shape raises."""
    speeds = []
    with open(metrics_jsonl) as f:
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("ranks") == ranks and record.get("images_per_s", 0) > 0:
                speeds.append(record["images_per_s"])
    return "%.6g" % statistics.median(speeds) if speeds else ""


def manifest_count(manifest):
    """The image count of a shard manifest (its "count"), as an int; raises
    when the file cannot be read or holds no count."""
    with open(manifest) as f:
        return int(json.load(f)["count"])
