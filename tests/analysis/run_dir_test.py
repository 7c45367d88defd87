"""Reading run directories: plan.tsv, stage files, partial runs, malformed files."""

import json
import os
import tempfile
import unittest

import fixtures
from ctmq_analysis import ini, run_dir
from ctmq_analysis.errors import RunDirError


class RunDirTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.run = os.path.join(self.tmp.name, "run")

    def tearDown(self):
        self.tmp.cleanup()

    def assertErrorNames(self, path, fragment, fn, *args):
        with self.assertRaises(RunDirError) as ctx:
            fn(*args)
        message = str(ctx.exception)
        self.assertIn(path, message)
        self.assertIn(fragment, message)
        return message

    def assertLoadRunErrorNames(self, path, content, fragment):
        """Writes `content` to `path` (a str as it is, anything else as JSON),
        then expects load_run of the run to fail naming the file and `fragment`."""
        with open(path, "w") as f:
            if isinstance(content, str):
                f.write(content)
            else:
                json.dump(content, f)
        return self.assertErrorNames(path, fragment, run_dir.load_run, self.run)

    def test_reads_plan_in_order_with_bits_and_roles(self):
        rows = fixtures.write_run(self.run, 7, lambda name: 40.0 + len(name))
        run = run_dir.load_run(self.run)
        self.assertEqual([s.plan.name for s in run.stages], [r[0] for r in rows])
        self.assertEqual([s.plan.index for s in run.stages], list(range(len(rows))))
        c1 = run.stage("c1-w2a2")
        self.assertEqual((c1.plan.cycle, c1.plan.step, c1.plan.w_bits, c1.plan.a_bits),
                         (1, 1, 2, 2))
        self.assertEqual(c1.plan.bits_label, "W2A2")
        self.assertEqual(run.stage("c0-fp").plan.bits_label, "FP")
        self.assertEqual(run.cycles(), [1, 2])
        self.assertEqual(run.cycle_result(2).plan.name, "c2-w1a1")
        self.assertEqual(run.baseline("direct").plan.name, "base-direct-w1a1")
        self.assertEqual(run.seed, "7")
        self.assertEqual(c1.top1, 40.0 + len("c1-w2a2"))
        self.assertEqual(c1.status, run_dir.STATUS_DONE)
        self.assertAlmostEqual(c1.train_time_s, 2.5)

    def test_cycle_result_falls_back_to_last_stage_of_cycle_without_result_role(self):
        rows = [r[:7] + (("step",) if r[7] == "result" else (r[7],)) for r in fixtures.chain_plan()]
        fixtures.write_run(self.run, 1, lambda name: 50.0, rows=rows)
        run = run_dir.load_run(self.run)
        self.assertEqual(run.cycle_result(1).plan.name, "c1-w1a1")

    def test_stage_without_done_is_missing_and_its_files_are_not_read(self):
        rows = fixtures.chain_plan()
        fixtures.write_plan(self.run, rows)
        fixtures.write_stage(self.run, "c0-fp", 80.0)
        # A stage still running: half-written files, no DONE.
        fixtures.write_stage(self.run, "c1-w2a2", 60.0, done=False)
        with open(os.path.join(self.run, "stages", "c1-w2a2", "eval.json"), "w") as f:
            f.write('{"top1": 6')
        run = run_dir.load_run(self.run)
        self.assertEqual(run.stage("c0-fp").status, run_dir.STATUS_DONE)
        self.assertEqual(run.stage("c1-w2a2").status, run_dir.STATUS_MISSING)
        self.assertIsNone(run.stage("c1-w2a2").top1)
        self.assertEqual(run.stage("c2-w1a1").status, run_dir.STATUS_MISSING)
        self.assertIsNone(run.config)
        self.assertIsNone(run.seed)

    def test_done_without_eval_is_not_evaluated(self):
        fixtures.write_plan(self.run, fixtures.chain_plan())
        fixtures.write_stage(self.run, "c0-fp", None)
        stage = run_dir.load_run(self.run).stage("c0-fp")
        self.assertEqual(stage.status, run_dir.STATUS_NOT_EVALUATED)
        self.assertIsNone(stage.top1)
        self.assertEqual(len(stage.metrics), 3)

    def test_missing_plan_names_the_file(self):
        os.makedirs(self.run)
        self.assertErrorNames(os.path.join(self.run, "plan.tsv"), "missing", run_dir.load_run,
                              self.run)

    def test_not_a_directory(self):
        self.assertErrorNames(self.run, "not a directory", run_dir.load_run, self.run)

    def write_plan_text(self, text):
        os.makedirs(self.run, exist_ok=True)
        path = os.path.join(self.run, "plan.tsv")
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_plan_errors_name_file_and_line(self):
        header = fixtures.PLAN_HEADER + "\n"
        path = self.write_plan_text("# plan\nindex\tstage\n")
        self.assertErrorNames(path, "lacks column(s) cycle", run_dir.read_plan, path)
        path = self.write_plan_text("# plan\n" + header + "0\tc0-fp\tX\t0\t32\t32\t1\tnone\tpretrain\n")
        self.assertErrorNames(path, "line 3: column cycle", run_dir.read_plan, path)
        path = self.write_plan_text("# plan\n" + header + "0\tc0-fp\t0\t0\t32\t32\n")
        self.assertErrorNames(path, "line 3: 6 tab-separated fields", run_dir.read_plan, path)
        path = self.write_plan_text("# plan\n" + header + "0\tc0-fp\t0\t0\t32\t32\t1\tnone\tboss\n")
        self.assertErrorNames(path, "unknown role 'boss'", run_dir.read_plan, path)
        line = "0\tc0-fp\t0\t0\t32\t32\t1\tnone\tpretrain\n"
        path = self.write_plan_text("# plan\n" + header + line + line.replace("0\t", "1\t", 1))
        self.assertErrorNames(path, "listed twice: c0-fp", run_dir.read_plan, path)
        path = self.write_plan_text("")
        self.assertErrorNames(path, "empty", run_dir.read_plan, path)

    def test_newer_plan_version_is_refused(self):
        path = self.write_plan_text("# ctmq plan version 2 (docs/run-directory.md)\n" + fixtures.PLAN_HEADER + "\n")
        self.assertErrorNames(path, "version 2 is newer", run_dir.read_plan, path)

    def test_malformed_eval_of_done_stage_names_the_file(self):
        fixtures.write_run(self.run, 1, lambda name: 50.0)
        path = os.path.join(self.run, "stages", "c1-w1a1", "eval.json")
        self.assertLoadRunErrorNames(path, "{not json", "not valid JSON")
        self.assertLoadRunErrorNames(path, {"stage": "c1-w1a1", "top1": 0.87, "loss": "x"},
                                     "'loss' must be a finite number")
        self.assertLoadRunErrorNames(path, {"stage": "c1-w1a1", "top1": 187.0}, "not a percentage")
        self.assertLoadRunErrorNames(path, {"stage": "c2-w1a1", "top1": 50.0},
                                     "says stage 'c2-w1a1'")
        self.assertLoadRunErrorNames(path, [50.0], "expected a JSON object")

    def test_malformed_metrics_line_is_named(self):
        fixtures.write_run(self.run, 1, lambda name: 50.0)
        path = os.path.join(self.run, "stages", "c0-fp", "metrics.jsonl")
        with open(path, "a") as f:
            f.write('{"global_step": 4, "loss": null}\n')
        self.assertErrorNames(path, "line 4: 'loss'", run_dir.load_run, self.run)
        self.assertLoadRunErrorNames(path, '{"global_step": 1, "loss": 2.0}\n{"global_st',
                                     "line 2: not valid JSON")
        # A torn last line is tolerated only where asked (a stage being written).
        self.assertEqual(len(run_dir.read_metrics(path, tolerate_torn_tail=True)), 1)

    def test_eval_records_are_not_training_curve_points(self):
        fixtures.write_run(self.run, 1, lambda name: 50.0)
        path = os.path.join(self.run, "stages", "c0-fp", "metrics.jsonl")
        before = run_dir.read_metrics(path, tolerate_torn_tail=False)
        with open(path, "a") as f:
            f.write('{"kind": "eval", "global_step": 99, "top1": 80.0, "loss": 0.5}\n')
        self.assertEqual(run_dir.read_metrics(path, tolerate_torn_tail=False), before)
        with open(path, "a") as f:
            f.write('{"kind": "train", "global_step": 100, "loss": 0.25}\n')
        self.assertEqual(len(run_dir.read_metrics(path, tolerate_torn_tail=False)),
                         len(before) + 1)

    def test_quant_report_is_validated(self):
        layers = [{"name": "conv1.weight", "bits": 1, "relative_error": 0.5,
                   "sign_flip_fraction": None}]
        fixtures.write_run(self.run, 1, lambda name: 50.0, quant_layers=layers)
        stage = run_dir.load_run(self.run).stage("c1-w1a1")
        self.assertEqual(stage.quant_report["layers"][0]["relative_error"], 0.5)
        path = os.path.join(self.run, "stages", "c1-w1a1", "quant_report.json")
        self.assertLoadRunErrorNames(path, {"version": 2, "layers": []}, "version 2 is newer")
        self.assertLoadRunErrorNames(path,
                                     {"layers": [dict(layers[0], sign_flip_fraction=1.5)]},
                                     "'sign_flip_fraction' must be null or in [0, 1]")

    def test_colliding_run_names_use_paths(self):
        a = os.path.join(self.tmp.name, "a", "run")
        b = os.path.join(self.tmp.name, "b", "run")
        fixtures.write_run(a, 1, lambda name: 50.0)
        fixtures.write_run(b, 2, lambda name: 50.0)
        runs = run_dir.load_runs([a, b])
        self.assertEqual([r.name for r in runs], [a, b])

    def test_seeds_directory_stands_for_its_seed_runs(self):
        parent = os.path.join(self.tmp.name, "fmnist")
        for seed in (10, 2):  # seed order, not name order
            fixtures.write_run(os.path.join(parent, "seed-%d" % seed), seed, lambda n: 50.0)
        os.makedirs(os.path.join(parent, "seed-3"))  # no plan.tsv: not a run
        runs = run_dir.load_runs([parent])
        self.assertEqual([r.name for r in runs], ["fmnist/seed-2", "fmnist/seed-10"])
        self.assertEqual([r.config["train"]["seed"] for r in runs], ["2", "10"])
        self.assertEqual(run_dir.seed_dirs(os.path.join(parent, "seed-2")), [])


class IniTest(unittest.TestCase):
    def test_sections_comments_and_headerless_options(self):
        parsed = ini.parse_ini("top = 1\n# c\n; c\n[train]\nseed = 3\n lr=0.1 \n[plan]\n"
                               "cycles = 2\n[train]\nseed = 4\n", "x.ini")
        self.assertEqual(parsed, {"": {"top": "1"}, "train": {"seed": "4", "lr": "0.1"},
                                  "plan": {"cycles": "2"}})

    def test_malformed_line_names_file_and_line(self):
        with self.assertRaises(RunDirError) as ctx:
            ini.parse_ini("[train]\nseed 3\n", "RUN/config.ini")
        self.assertIn("RUN/config.ini: line 2", str(ctx.exception))


if __name__ == "__main__":
    unittest.main()
