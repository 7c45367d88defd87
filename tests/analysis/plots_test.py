"""The PNG plots exist, are valid PNGs and have the documented pixel sizes."""

import os
import shutil
import tempfile
import unittest

import fixtures
import png_check

import analyze

# The sizes docs/analysis.md promises (width, height in pixels).
EXPECTED = {
    "chain_accuracy": (1200, 600),
    "cycle_accuracy": (800, 500),
    "ctmq_vs_baselines": (1000, 550),
    "training_curves": (1400, 800),
    "quant_report": (1400, 800),
}


def quant_layers(scale):
    return [{"name": "layer%d.conv.weight" % i, "bits": 1, "numel": 100,
             "relative_error": scale * (i + 1), "sign_flip_fraction": 0.01 * i}
            for i in range(4)]


class PlotsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.out = os.path.join(self.tmp, "out")

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def assertPng(self, name, kind):
        path = os.path.join(self.out, name)
        self.assertTrue(os.path.isfile(path), "missing plot %s" % path)
        self.assertEqual(png_check.png_size(path), EXPECTED[kind], path)

    def test_every_plot_of_two_groups_with_quant_reports(self):
        paths = []
        for seed in (1, 2):
            path = os.path.join(self.tmp, "a%d" % seed)
            fixtures.write_run(path, seed, lambda name, s=seed: 50.0 + s + len(name),
                               quant_layers=quant_layers(0.1))
            paths.append(path)
        other = os.path.join(self.tmp, "b")
        fixtures.write_run(other, 1, lambda name: 40.0, rows=fixtures.chain_plan(cycles=3))
        paths.append(other)
        _, _, written = analyze.analyze(paths, self.out)
        self.assertPng("chain_accuracy_G1.png", "chain_accuracy")
        self.assertPng("chain_accuracy_G2.png", "chain_accuracy")
        self.assertPng("cycle_accuracy.png", "cycle_accuracy")
        self.assertPng("ctmq_vs_baselines.png", "ctmq_vs_baselines")
        for run in ("a1", "a2", "b"):
            self.assertPng("training_curves_%s.png" % run, "training_curves")
        self.assertPng("quant_report_a1.png", "quant_report")
        self.assertPng("quant_report_a2.png", "quant_report")
        # No quant_report.json in run b: no plot for it.
        self.assertFalse(os.path.exists(os.path.join(self.out, "quant_report_b.png")))
        pngs = sorted(os.path.basename(p) for p in written if p.endswith(".png"))
        self.assertEqual(pngs, sorted(f for f in os.listdir(self.out) if f.endswith(".png")))

    def test_partial_run_still_plots(self):
        run = os.path.join(self.tmp, "partial")
        fixtures.write_plan(run, fixtures.chain_plan())
        fixtures.write_stage(run, "c0-fp", 80.0)
        fixtures.write_stage(run, "c1-w2a2", 55.0)
        fixtures.write_stage(run, "c1-w1a1", None, done=False)
        analyze.analyze([run], self.out)
        self.assertPng("chain_accuracy_G1.png", "chain_accuracy")
        self.assertPng("cycle_accuracy.png", "cycle_accuracy")
        self.assertPng("ctmq_vs_baselines.png", "ctmq_vs_baselines")
        self.assertPng("training_curves_partial.png", "training_curves")

    def test_png_check_rejects_non_png_and_truncated_files(self):
        os.makedirs(self.out)
        bad = os.path.join(self.out, "bad.png")
        with open(bad, "wb") as f:
            f.write(b"GIF89a" + b"\0" * 40)
        with self.assertRaises(ValueError):
            png_check.png_size(bad)
        run = os.path.join(self.tmp, "r")
        fixtures.write_run(run, 1, lambda name: 50.0)
        analyze.analyze([run], self.out)
        good = os.path.join(self.out, "cycle_accuracy.png")
        with open(good, "rb") as f:
            data = f.read()
        with open(bad, "wb") as f:
            f.write(data[:len(data) // 2])
        with self.assertRaises(ValueError):
            png_check.png_size(bad)


if __name__ == "__main__":
    unittest.main()
