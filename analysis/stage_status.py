#!/usr/bin/env python3
"""What the pipeline scripts print about a run (ctmq_analysis/stage_status.py).

Usage: python3 analysis/stage_status.py table RUN_DIR   (pipeline/summarize.sh)
       python3 analysis/stage_status.py top1 EVAL_JSON  (ctmq_top1 in pipeline/common.sh)
       python3 analysis/stage_status.py speed METRICS_JSONL RANKS
           (ctmq_recorded_speed in slurm/time-limits.sh: the median images/s
           of the records with RANKS ranks, 6 significant digits; nothing
           when there are none)
       python3 analysis/stage_status.py manifest-count MANIFEST
           (ctmq_manifest_count in slurm/time-limits.sh: the manifest's count)

Standard library only, so any python3 runs it. Exit status: 0; 1 when the
file of speed or manifest-count cannot be read; 2 for bad arguments.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ctmq_analysis import stage_status  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(prog="stage_status.py", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="what", required=True)
    commands.add_parser("table").add_argument("path", metavar="RUN_DIR")
    commands.add_parser("top1").add_argument("path", metavar="EVAL_JSON")
    speed = commands.add_parser("speed")
    speed.add_argument("path", metavar="METRICS_JSONL")
    speed.add_argument("ranks", type=int, metavar="RANKS")
    commands.add_parser("manifest-count").add_argument("path", metavar="MANIFEST")
    args = parser.parse_args(argv)
    if args.what == "table":
        print("\n".join(stage_status.stage_table_lines(args.path)))
    elif args.what == "top1":
        print(stage_status.top1_text(args.path))
    elif args.what == "speed":
        try:
            text = stage_status.recorded_speed_text(args.path, args.ranks)
        except (OSError, ValueError, TypeError, AttributeError) as e:
            print("stage_status.py speed: cannot read %s: %s" % (args.path, e), file=sys.stderr)
            return 1
        if text:
            print(text)
    else:
        try:
            print(stage_status.manifest_count(args.path))
        except (OSError, ValueError, TypeError, KeyError) as e:
            print("stage_status.py manifest-count: cannot read the count of %s: %r"
                  % (args.path, e), file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
