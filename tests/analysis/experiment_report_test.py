"""experiments/report.py: the statistics of a pre-registered experiment's report,
checked against a textbook t table and a hand-computed case, its decision rule
(with "beyond margin"), and a whole report from a small run tree."""

import json
import math
import os
import subprocess
import sys
import tempfile
import unittest

import fixtures

EXPERIMENTS = os.path.normpath(os.path.join(fixtures.ANALYSIS_DIR, "..", "experiments"))
sys.path.insert(0, EXPERIMENTS)
import report  # noqa: E402


class StatisticsTest(unittest.TestCase):
    def test_t_quantiles_match_the_textbook_table(self):
        # Two-sided 95 % (t_{0.975}) from any printed table, e.g. Montgomery &
        # Runger, Applied Statistics, Table V.
        for df, t in [(1, 12.706), (2, 4.303), (3, 3.182), (5, 2.571), (10, 2.228),
                      (20, 2.086), (30, 2.042)]:
            self.assertAlmostEqual(report.t975(df), t, places=3, msg="df=%d" % df)
        self.assertEqual(report.t975(200), 1.96)

    def test_interval_of_a_hand_computed_case(self):
        # 1, 2, 3, 4: mean 2.5; sum of squared deviations 5, sample variance 5/3,
        # std 1.29099; half-width t_{0.975,3} * std / sqrt(4) = 3.182 * 1.29099 / 2 = 2.05397.
        n, mean, std, half = report.interval([1.0, 2.0, 3.0, 4.0])
        self.assertEqual(n, 4)
        self.assertAlmostEqual(mean, 2.5)
        self.assertAlmostEqual(std, math.sqrt(5.0 / 3.0), places=9)
        self.assertAlmostEqual(half, 2.05397, places=4)
        self.assertIsNone(report.interval([3.0])[3])

    def test_decision_rule(self):
        m = 0.5
        self.assertEqual(report.decide(-0.90, 0.53, m), "loss")  # [-1.43, -0.37]: not beyond
        self.assertEqual(report.decide(-1.20, 0.30, m), "loss, beyond margin")
        self.assertEqual(report.decide(0.40, 0.30, m), "win")
        self.assertEqual(report.decide(1.30, 0.70, m), "win, beyond margin")
        self.assertEqual(report.decide(0.10, 0.30, m), "tie")
        self.assertEqual(report.decide(0.30, 0.50, m), "inconclusive")
        self.assertEqual(report.decide(0.0, None, m), "inconclusive (fewer than 2 seeds)")


class ReportTest(unittest.TestCase):
    def test_report_pairs_seeds_and_decides(self):
        with tempfile.TemporaryDirectory() as tmp:
            exp = os.path.join(tmp, "exp")
            out = os.path.join(tmp, "out")
            os.makedirs(exp)
            spec = {"title": "t", "order": ["main"],
                    "arms": {"a": {"run": "main", "stage": "x"}, "b": {"run": "main", "stage": "y"}},
                    "comparisons": [["a", "b"]], "primary": ["a", "b"], "tie_margin": 0.5}
            with open(os.path.join(exp, "arms.json"), "w", encoding="utf-8") as f:
                json.dump(spec, f)
            # a - b per seed: 1, 2, 3, 4 (the hand-computed case above).
            for seed, (a, b) in enumerate([(81.0, 80.0), (82.0, 80.0), (83.0, 80.0), (84.0, 80.0)], 1):
                for stage, top1 in (("x", a), ("y", b)):
                    d = os.path.join(out, "seed%d" % seed, "main", "stages", stage)
                    os.makedirs(d)
                    with open(os.path.join(d, "eval.json"), "w", encoding="utf-8") as f:
                        json.dump({"top1": top1}, f)
            done = subprocess.run([sys.executable, os.path.join(EXPERIMENTS, "report.py"), exp, out],
                                  capture_output=True, text=True)
            self.assertEqual(done.returncode, 0, done.stderr)
            with open(os.path.join(out, "report.md"), encoding="utf-8") as f:
                text = f.read()
            # mean 2.5, std 1.29, CI [0.45, 4.55], half-width 2.05: a win, not beyond the margin.
            self.assertIn("| a - b (primary) | 4 | +2.50 | 1.29 | [+0.45, +4.55] | 2.05 | win |", text)
            self.assertIn("| a | main/x | 4 | 82.50 | 1.29 | [80.45, 84.55] |", text)


if __name__ == "__main__":
    unittest.main()
