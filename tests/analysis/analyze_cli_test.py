"""The command line: exit status and the message for a malformed run directory."""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import fixtures

ANALYZE = os.path.join(os.path.normpath(fixtures.ANALYSIS_DIR), "analyze.py")


def run_analyze(*args):
    return subprocess.run([sys.executable, ANALYZE] + list(args), capture_output=True,
                          text=True, timeout=120)


class AnalyzeCliTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def test_success_prints_one_line_and_writes_tables(self):
        run = os.path.join(self.tmp, "run")
        fixtures.write_run(run, 1, lambda name: 50.0)
        os.remove(os.path.join(run, "stages", "base-step-w1a1", "DONE"))
        out = os.path.join(self.tmp, "out")
        result = run_analyze(run, "--out", out)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("1 run(s) in 1 seed group(s), 7/8 stages evaluated", result.stdout)
        for name in ("stages.md", "stages.csv", "summary.md", "summary.csv"):
            self.assertTrue(os.path.isfile(os.path.join(out, name)), name)

    def test_malformed_run_exits_2_naming_the_file(self):
        run = os.path.join(self.tmp, "run")
        fixtures.write_run(run, 1, lambda name: 50.0)
        eval_path = os.path.join(run, "stages", "c2-w2a2", "eval.json")
        with open(eval_path, "w") as f:
            f.write("{")
        result = run_analyze(run, "--out", os.path.join(self.tmp, "out"))
        self.assertEqual(result.returncode, 2)
        self.assertIn(eval_path, result.stderr)
        self.assertNotIn("Traceback", result.stderr)

    def test_missing_arguments_exit_2(self):
        self.assertEqual(run_analyze().returncode, 2)
        self.assertEqual(run_analyze(self.tmp).returncode, 2)  # no --out


if __name__ == "__main__":
    unittest.main()
