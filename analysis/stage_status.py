#!/usr/bin/env python3
"""What the pipeline scripts print about a run (ctmq_analysis/stage_status.py).

Usage: python3 analysis/stage_status.py table RUN_DIR   (pipeline/summarize.sh)
       python3 analysis/stage_status.py top1 EVAL_JSON  (ctmq_top1 in pipeline/common.sh)

Standard library only, so any python3 runs it. Exit status: 0, or 2 for bad
arguments.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ctmq_analysis import stage_status  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(prog="stage_status.py", description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=("table", "top1"))
    parser.add_argument("path", metavar="RUN_DIR|EVAL_JSON")
    args = parser.parse_args(argv)
    if args.what == "table":
        print("\n".join(stage_status.stage_table_lines(args.path)))
    else:
        print(stage_status.top1_text(args.path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
