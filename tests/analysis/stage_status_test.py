"""stage_status (pipeline/summarize.sh's table, ctmq_top1) on hand-made run
directories: every status, what-if rows, and unreadable files."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import fixtures
from ctmq_analysis import stage_status

SCRIPT = os.path.join(os.path.normpath(fixtures.ANALYSIS_DIR), "stage_status.py")

HEADER = ("stage              cycle  bits     epochs  init               status          "
          "top1%   top5%    loss")


class StageStatusTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.run = os.path.join(self.tmp, "run")
        rows = fixtures.chain_plan(cycles=1)  # c0-fp, c1-w2a2, c1-w1a1, two baselines
        fixtures.write_plan(self.run, rows)
        fixtures.write_stage(self.run, "c0-fp", 91.234, top5=99.5, loss=0.31234)
        fixtures.write_stage(self.run, "c1-w2a2", 80.0)  # no top5
        fixtures.write_stage(self.run, "c1-w1a1", None)  # DONE, no eval.json
        fixtures.write_stage(self.run, "base-direct-w1a1", 70.0, done=False)
        fixtures.write_stage(self.run, "base-step-w1a1", 60.0)
        self.write("base-step-w1a1", "eval.json", "{bad")
        self.write("c0-fp", "eval-w8a8.json", json.dumps({"top1": 88.1, "top5": 99.0, "loss": 0.5}))
        self.write("c0-fp", "eval-w4a4.json", json.dumps({"top1": 70.12, "loss": 0.9}))
        self.write("c0-fp", "eval-w2a2.json", "not json")

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def write(self, stage, name, text):
        with open(os.path.join(self.run, "stages", stage, name), "w") as f:
            f.write(text)

    def test_table(self):
        self.assertEqual(stage_status.stage_table_lines(self.run), [
            HEADER,
            "c0-fp              0      FP            1  none               done            "
            "91.23   99.50  0.3123",
            "  same weights            W4A4          0  (no training)      what-if         "
            "70.12       -  0.9000",
            "  same weights            W8A8          0  (no training)      what-if         "
            "88.10   99.00  0.5000",
            "c1-w2a2            1      W2A2          1  c0-fp              done            "
            "80.00       -  1.0000",
            "c1-w1a1            1      W1A1          1  c1-w2a2            not-evaluated   "
            "    -       -       -",
            "base-direct-w1a1   0      W1A1          2  c0-fp              missing         "
            "    -       -       -",
            "base-step-w1a1     0      W1A1          1  c0-fp              not-evaluated   "
            "    -       -       -",
        ])

    def test_long_init_is_shortened(self):
        fixtures.write_plan(self.run, [("c0-fp", 0, 0, 32, 32, 1, "a-very-long-stage-name-x",
                                        "pretrain")])
        self.assertIn(" a-very-long-sta... ", stage_status.stage_table_lines(self.run)[1])

    def test_top1(self):
        stages = os.path.join(self.run, "stages")
        self.assertEqual(stage_status.top1_text(os.path.join(stages, "c0-fp", "eval.json")),
                         "91.23")
        self.assertEqual(stage_status.top1_text(os.path.join(stages, "c1-w1a1", "eval.json")),
                         "-")
        self.assertEqual(
            stage_status.top1_text(os.path.join(stages, "base-step-w1a1", "eval.json")), "?")

    def test_command_line(self):
        result = subprocess.run([sys.executable, SCRIPT, "table", self.run], capture_output=True,
                                text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, "\n".join(stage_status.stage_table_lines(self.run)) + "\n")
        result = subprocess.run([sys.executable, SCRIPT, "bogus", self.run], capture_output=True,
                                text=True, timeout=60)
        self.assertEqual(result.returncode, 2)

    def test_recorded_speed(self):
        path = os.path.join(self.tmp, "metrics.jsonl")
        with open(path, "w") as f:
            for ranks, speed in ((2, 100.0), (1, 5000.0), (2, 300.123456789), (2, 0), (2, 200.5)):
                f.write(json.dumps({"ranks": ranks, "images_per_s": speed}) + "\n")
            f.write(json.dumps({"ranks": 2}) + "\n")  # no speed: left out
            f.write('{"ranks": 2, "images_per_s": 9')  # cut short by a killed job
        self.assertEqual(stage_status.recorded_speed_text(path, 2), "200.5")  # median of 3
        self.assertEqual(stage_status.recorded_speed_text(path, 1), "5000")
        self.assertEqual(stage_status.recorded_speed_text(path, 4), "")
        result = subprocess.run([sys.executable, SCRIPT, "speed", path, "2"], capture_output=True,
                                text=True, timeout=60)
        self.assertEqual((result.returncode, result.stdout), (0, "200.5\n"), result.stderr)
        result = subprocess.run([sys.executable, SCRIPT, "speed", path, "4"], capture_output=True,
                                text=True, timeout=60)
        self.assertEqual((result.returncode, result.stdout), (0, ""), result.stderr)
        result = subprocess.run([sys.executable, SCRIPT, "speed", path + ".none", "2"],
                                capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 1)

    def test_manifest_count(self):
        path = os.path.join(self.tmp, "manifest.json")
        with open(path, "w") as f:
            json.dump({"version": 2, "count": 640, "shards": []}, f)
        self.assertEqual(stage_status.manifest_count(path), 640)
        result = subprocess.run([sys.executable, SCRIPT, "manifest-count", path],
                                capture_output=True, text=True, timeout=60)
        self.assertEqual((result.returncode, result.stdout), (0, "640\n"), result.stderr)
        with open(path, "w") as f:
            json.dump({"version": 2}, f)
        result = subprocess.run([sys.executable, SCRIPT, "manifest-count", path],
                                capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 1)
        self.assertIn(path, result.stderr)


if __name__ == "__main__":
    unittest.main()
