#!/usr/bin/python3
"""Tables and plots of accuracy across the stages, cycles and seeds of ctmq runs.

Usage: /usr/bin/python3 analysis/analyze.py RUN_DIR [RUN_DIR ...] --out OUT_DIR

Writes into OUT_DIR (created if needed): stages.md, stages.csv, summary.md,
summary.csv and the PNG plots described in docs/analysis.md. Reads only the
run directories' plan.tsv, config.ini and stage files (DONE, eval.json,
metrics.jsonl, quant_report.json), never logs. Exit status: 0 on success, 2
for bad arguments or a malformed run directory (the message names the file).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ctmq_analysis import grouping, plots, run_dir, tables  # noqa: E402
from ctmq_analysis.errors import RunDirError  # noqa: E402


def analyze(run_paths, out_dir):
    """Loads the runs and writes every output; returns the list of files written."""
    runs = run_dir.load_runs(run_paths)
    groups = grouping.group_runs(runs)
    os.makedirs(out_dir, exist_ok=True)
    written = []

    stage_rows = tables.stage_rows(runs)
    path = os.path.join(out_dir, "stages.csv")
    tables.write_csv(path, tables.STAGE_COLUMNS, stage_rows)
    written.append(path)
    path = os.path.join(out_dir, "stages.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write(tables.stages_markdown(stage_rows))
    written.append(path)

    summary_rows = tables.summary_rows(groups)
    path = os.path.join(out_dir, "summary.csv")
    tables.write_csv(path, tables.SUMMARY_COLUMNS, summary_rows)
    written.append(path)
    path = os.path.join(out_dir, "summary.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write(tables.summary_markdown(groups, summary_rows, grouping.describe))
    written.append(path)

    written += plots.write_all(runs, groups, out_dir)
    return runs, groups, written


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="analyze.py", description="Tables and plots of ctmq run directories "
        "(docs/analysis.md).")
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories")
    parser.add_argument("--out", required=True, metavar="OUT_DIR", help="output directory")
    args = parser.parse_args(argv)
    try:
        runs, groups, written = analyze(args.runs, args.out)
    except RunDirError as e:
        print("analyze.py: error: %s" % e, file=sys.stderr)
        return 2
    done = sum(1 for r in runs for s in r.stages if s.status == run_dir.STATUS_DONE)
    total = sum(len(r.stages) for r in runs)
    print("analyze.py: %d run(s) in %d seed group(s), %d/%d stages evaluated; wrote %d files "
          "to %s" % (len(runs), len(groups), done, total, len(written), args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
