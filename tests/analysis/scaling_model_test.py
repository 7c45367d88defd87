"""scaling_model: the ring formula against a step-by-step ring simulation,
efficiency limits, overlap never hurting, and the projection script's table."""

import math
import os
import subprocess
import sys
import unittest

import fixtures
from ctmq_analysis import scaling_model as m

SCRIPT = os.path.join(os.path.normpath(fixtures.ANALYSIS_DIR), "scaling_projection.py")


def simulated_ring_s(n_bytes, p, alpha, beta):
    """Oracle: reduce-scatter then allgather, p - 1 steps each; every step
    sends one chunk of n/p bytes to the next rank, all ranks in parallel."""
    chunk = n_bytes / p
    seconds = 0.0
    for _phase in ("reduce-scatter", "allgather"):
        for _step in range(p - 1):
            seconds += alpha + chunk * beta
    return seconds


class ScalingModelTest(unittest.TestCase):
    def test_ring_matches_simulation(self):
        for p in (2, 3, 8, 512):
            for n in (4, 1 << 20, 46_758_048):
                self.assertAlmostEqual(m.ring_allreduce_s(n, p, 3e-6, 1e-10),
                                       simulated_ring_s(n, p, 3e-6, 1e-10), places=12)
        self.assertEqual(m.ring_allreduce_s(1 << 20, 1, 1e-6, 1e-9), 0.0)

    def test_bandwidth_term_tends_to_twice_n_beta(self):
        t = m.ring_allreduce_s(1e9, 4096, 0.0, 1e-9)
        self.assertLess(t, 2.0)
        self.assertGreater(t, 1.999)

    def test_buckets_add_latency_only(self):
        one = m.bucketed_allreduce_s(100e6, 64, 5e-6, 1e-10, 200e6)
        four = m.bucketed_allreduce_s(100e6, 64, 5e-6, 1e-10, 25e6)
        self.assertAlmostEqual(four - one, 3 * 2 * 63 * 5e-6, places=12)

    def test_efficiency_bounds_and_overlap(self):
        n = m.RESNET18_PARAMETERS * m.FP32_BYTES
        previous = 1.0
        for p in (1, 2, 8, 64, 512):
            plain = m.efficiency(p, 0.08, n, 5e-6, 8e-11, 25 << 20)
            overlapped = m.efficiency(p, 0.08, n, 5e-6, 8e-11, 25 << 20, overlap=True)
            self.assertLessEqual(plain, previous + 1e-12)  # more GPUs never help
            self.assertLessEqual(plain, overlapped)
            self.assertLessEqual(overlapped, 1.0)
            self.assertGreater(plain, 0.0)
            previous = plain
        self.assertEqual(m.efficiency(1, 0.08, n, 5e-6, 8e-11, 25 << 20), 1.0)
        # Free communication: perfect scaling.
        self.assertEqual(m.efficiency(512, 0.08, n, 0.0, 0.0, 25 << 20), 1.0)

    def test_overlap_cannot_hide_the_last_bucket(self):
        comm = m.bucketed_allreduce_s(100, 2, 1.0, 0.0, 50)  # 2 buckets, 2 s
        e = m.efficiency(2, 1000.0, 100, 1.0, 0.0, 50, overlap=True)
        self.assertAlmostEqual(e, 1000.0 / (1000.0 + comm / 2))

    def test_bad_arguments(self):
        with self.assertRaises(ValueError):
            m.ring_allreduce_s(10, 0, 1e-6, 1e-9)
        with self.assertRaises(ValueError):
            m.efficiency(8, 0.0, 10, 1e-6, 1e-9, 10)
        with self.assertRaises(ValueError):
            m.bucketed_allreduce_s(10, 8, 1e-6, 1e-9, 0)

    def test_script_prints_the_projection(self):
        out = subprocess.run([sys.executable, SCRIPT, "--fitted-alpha-us", "0.6",
                              "--fitted-beta-ns", "0.4"], capture_output=True, text=True,
                             check=True).stdout
        rows = [line for line in out.splitlines() if line.startswith("| ") and line[2].isdigit()]
        self.assertEqual([int(r.split("|")[1]) for r in rows], [8, 16, 32, 64, 128, 256, 512])
        self.assertIn("Horovod", out)
        last = [c.strip() for c in rows[-1].split("|")]
        plain, overlapped = float(last[3]), float(last[4])
        self.assertTrue(0 < plain <= overlapped <= 1, last)
        n = m.RESNET18_PARAMETERS * m.FP32_BYTES
        # The defaults: 64 images per GPU at 2,600 img/s, ctmq's 4 MiB buckets.
        self.assertAlmostEqual(plain, m.efficiency(512, 64 / 2600, n, 5e-6, 8e-11, 4 * 2**20), places=2)
        self.assertAlmostEqual(overlapped, m.efficiency(512, 64 / 2600, n, 5e-6, 8e-11, 4 * 2**20,
                                                        overlap=True), places=2)
        bad = subprocess.run([sys.executable, SCRIPT, "--fitted-alpha-us", "1"],
                             capture_output=True, text=True)
        self.assertEqual(bad.returncode, 2)
        self.assertTrue(math.isfinite(plain))


if __name__ == "__main__":
    unittest.main()
