"""Seed statistics, grouping and the tables, against hand-computed values."""

import csv
import math
import os
import shutil
import tempfile
import unittest

import fixtures
from ctmq_analysis import grouping, run_dir, stats, tables

import analyze


class StatsTest(unittest.TestCase):
    def test_mean_and_sample_std(self):
        # mean 73; deviations -3, -1, 4; sum of squares 26; / (3 - 1) = 13.
        n, mean, std = stats.mean_std([70.0, None, 72.0, 77.0])
        self.assertEqual(n, 3)
        self.assertAlmostEqual(mean, 73.0)
        self.assertAlmostEqual(std, math.sqrt(13.0))

    def test_one_and_no_value(self):
        self.assertEqual(stats.mean_std([61.5]), (1, 61.5, None))
        self.assertEqual(stats.mean_std([None, None]), (0, None, None))

    def test_paired_differences_skip_incomplete_pairs(self):
        self.assertEqual(stats.paired_differences([3.0, None, 5.0], [1.0, 2.0, 1.5]), [2.0, 3.5])


# Per-seed top-1 of the stages that matter, chosen by hand:
#   seed  c1 result  c2 result  direct  step
#   1     60         64         58      55
#   2     62         65         61      57
#   3     61         69         58      53
SEEDS = {
    1: {"c1-w1a1": 60.0, "c2-w1a1": 64.0, "base-direct-w1a1": 58.0, "base-step-w1a1": 55.0},
    2: {"c1-w1a1": 62.0, "c2-w1a1": 65.0, "base-direct-w1a1": 61.0, "base-step-w1a1": 57.0},
    3: {"c1-w1a1": 61.0, "c2-w1a1": 69.0, "base-direct-w1a1": 58.0, "base-step-w1a1": 53.0},
}


class SummaryTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.paths = []
        for seed, values in SEEDS.items():
            path = os.path.join(self.tmp, "seed%d" % seed)
            fixtures.write_run(path, seed, lambda name, v=values: v.get(name, 70.0))
            self.paths.append(path)

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def seed_rows(self, rows):
        return {r["metric"]: r for r in rows if r["scope"] == "seeds"}

    def test_seed_group_mean_std_and_paired_differences(self):
        groups = grouping.group_runs(run_dir.load_runs(self.paths))
        self.assertEqual(len(groups), 1)
        rows = self.seed_rows(tables.summary_rows(groups))
        # CTMQ (cycle 2): 64, 65, 69 -> mean 66, deviations -2,-1,3 -> var 14/2 = 7.
        self.assertEqual(rows["ctmq_top1"]["n"], 3)
        self.assertAlmostEqual(rows["ctmq_top1"]["value"], 66.0)
        self.assertAlmostEqual(rows["ctmq_top1"]["std"], math.sqrt(7.0))
        # Staircase (cycle 1): 60, 62, 61 -> mean 61, var (1+1+0)/2 = 1.
        self.assertAlmostEqual(rows["staircase_top1"]["value"], 61.0)
        self.assertAlmostEqual(rows["staircase_top1"]["std"], 1.0)
        self.assertAlmostEqual(rows["c1_top1"]["value"], 61.0)
        # CTMQ - direct, paired per seed: 6, 4, 11 -> mean 7, var (1+9+16)/2 = 13.
        self.assertAlmostEqual(rows["ctmq_minus_direct"]["value"], 7.0)
        self.assertAlmostEqual(rows["ctmq_minus_direct"]["std"], math.sqrt(13.0))
        # CTMQ - staircase: 4, 3, 8 -> mean 5, var (1+4+9)/2 = 7.
        self.assertAlmostEqual(rows["ctmq_minus_staircase"]["value"], 5.0)
        self.assertAlmostEqual(rows["ctmq_minus_staircase"]["std"], math.sqrt(7.0))
        # CTMQ - step: 9, 8, 16 -> mean 11, var (4+9+25)/2 = 19.
        self.assertAlmostEqual(rows["ctmq_minus_step"]["value"], 11.0)
        self.assertAlmostEqual(rows["ctmq_minus_step"]["std"], math.sqrt(19.0))

    def test_restart_control_is_its_last_stage_and_absent_without_it(self):
        rows = fixtures.chain_plan() + [
            ("base-restart-w1a1-%d" % i, 0, i, 1, 1, 1,
             "c0-fp" if i == 1 else "base-restart-w1a1-%d" % (i - 1), "baseline")
            for i in (1, 2)]
        path = os.path.join(self.tmp, "restart")
        top1 = {"c2-w1a1": 66.0, "base-restart-w1a1-1": 50.0, "base-restart-w1a1-2": 63.5}
        fixtures.write_run(path, 1, lambda name: top1.get(name, 70.0), rows=rows)
        metrics = dict(tables.run_metrics(run_dir.load_run(path)))
        self.assertEqual(metrics["restart_top1"], 63.5)  # the last stage, not the first
        self.assertAlmostEqual(metrics["ctmq_minus_restart"], 2.5)
        plain = dict(tables.run_metrics(run_dir.load_run(self.paths[0])))
        self.assertNotIn("restart_top1", plain)
        self.assertNotIn("ctmq_minus_restart", plain)

    def test_missing_stage_reduces_n_and_is_not_an_error(self):
        os.remove(os.path.join(self.paths[2], "stages", "c2-w1a1", "DONE"))
        groups = grouping.group_runs(run_dir.load_runs(self.paths))
        rows = tables.summary_rows(groups)
        seeds = self.seed_rows(rows)
        self.assertEqual(seeds["ctmq_top1"]["n"], 2)
        self.assertAlmostEqual(seeds["ctmq_top1"]["value"], 64.5)
        self.assertAlmostEqual(seeds["ctmq_top1"]["std"], math.sqrt(0.5))
        run3 = {r["metric"]: r["value"] for r in rows
                if r["scope"] == "run" and r["run"] == "seed3"}
        self.assertIsNone(run3["ctmq_top1"])
        self.assertIsNone(run3["ctmq_minus_direct"])
        self.assertEqual(run3["staircase_top1"], 61.0)

    def test_grouping_ignores_seed_and_operational_keys_only(self):
        same = os.path.join(self.tmp, "threads")
        fixtures.write_run(same, 9, lambda name: 50.0)
        with open(os.path.join(same, "config.ini"), "a") as f:
            f.write("[train]\nthreads = 2\nlog-every = 5\n")
        other_config = os.path.join(self.tmp, "lr")
        fixtures.write_run(other_config, 1, lambda name: 50.0)
        with open(os.path.join(other_config, "config.ini"), "a") as f:
            f.write("[train]\nlr = 0.5\n")
        other_plan = os.path.join(self.tmp, "three-cycles")
        fixtures.write_run(other_plan, 1, lambda name: 50.0, rows=fixtures.chain_plan(cycles=3))
        no_config = os.path.join(self.tmp, "no-config")
        fixtures.write_run(no_config, 1, lambda name: 50.0)
        os.remove(os.path.join(no_config, "config.ini"))
        runs = run_dir.load_runs(self.paths + [same, other_config, other_plan, no_config])
        groups = grouping.group_runs(runs)
        self.assertEqual([[r.name for r in g.runs] for g in groups],
                         [["seed1", "seed2", "seed3", "threads"], ["lr"], ["three-cycles"],
                          ["no-config"]])
        self.assertEqual([g.name for g in groups], ["G1", "G2", "G3", "G4"])

    def test_written_tables_hold_every_stage_and_the_numbers(self):
        out = os.path.join(self.tmp, "out")
        runs, groups, written = analyze.analyze(self.paths, out)
        with open(os.path.join(out, "stages.csv")) as f:
            stage_rows = list(csv.DictReader(f))
        self.assertEqual(len(stage_rows), 3 * len(fixtures.chain_plan()))
        by_key = {(r["run"], r["stage"]): r for r in stage_rows}
        self.assertEqual(float(by_key[("seed2", "c2-w1a1")]["top1"]), 65.0)
        self.assertEqual(float(by_key[("seed2", "c2-w1a1")]["top5"]), 85.0)
        self.assertEqual(by_key[("seed2", "c2-w1a1")]["bits"], "W1A1")
        self.assertEqual(by_key[("seed2", "base-direct-w1a1")]["epochs"], "5.0")
        with open(os.path.join(out, "summary.csv")) as f:
            summary = list(csv.DictReader(f))
        mean = [r for r in summary if r["scope"] == "seeds" and r["metric"] == "ctmq_top1"][0]
        self.assertAlmostEqual(float(mean["value"]), 66.0)
        self.assertAlmostEqual(float(mean["std"]), math.sqrt(7.0))
        with open(os.path.join(out, "summary.md")) as f:
            md = f.read()
        self.assertIn("66.00 ± 2.65 (n=3)", md)
        self.assertIn("7.00 ± 3.61 (n=3)", md)
        with open(os.path.join(out, "stages.md")) as f:
            md = f.read()
        self.assertIn("| seed3 | 5 | c2-w1a1 | 2 | 2 | result | W1A1 | 1 | c2-w2a2 | done | 69.00 |",
                      md)


if __name__ == "__main__":
    unittest.main()
