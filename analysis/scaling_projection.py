#!/usr/bin/env python3
"""Projected data-parallel efficiency of ResNet-18 on 8..512 GPUs (ctmq_analysis/scaling_model.py).

Usage: python3 analysis/scaling_projection.py [--step-ms 80] [--alpha-us 5] [--beta-ns 0.08]
           [--fitted-alpha-us A --fitted-beta-ns B] [--bucket-mib 25]

--alpha-us/--beta-ns: the inter-node link (default: 100 Gb/s InfiniBand, assumed).
--fitted-*: alpha and beta fitted on this machine by ctmq-bench-mpi-scaling; when
given, a second pair of columns shows the same projection with that link.
--step-ms: one GPU's compute time per step (an assumption; see docs/performance.md).
Prints a Markdown table beside Horovod's published ~90% at 512 GPUs. Standard
library only. Exit status: 0, or 2 for bad arguments.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ctmq_analysis import scaling_model as m  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(prog="scaling_projection.py", description=__doc__.split("\n")[0])
    parser.add_argument("--step-ms", type=float, default=80.0,
                        help="per-GPU compute time of one step in ms (default 80: an assumed H100 "
                             "ResNet-18 step at batch 256, ~3,200 img/s)")
    parser.add_argument("--alpha-us", type=float, default=m.INFINIBAND_100G_ALPHA_S * 1e6)
    parser.add_argument("--beta-ns", type=float, default=m.INFINIBAND_100G_BETA_S_PER_BYTE * 1e9)
    parser.add_argument("--fitted-alpha-us", type=float)
    parser.add_argument("--fitted-beta-ns", type=float)
    parser.add_argument("--bucket-mib", type=float, default=25.0,
                        help="gradient bucket size in MiB (default 25, PyTorch DDP's)")
    parser.add_argument("--parameters", type=int, default=m.RESNET18_PARAMETERS)
    args = parser.parse_args(argv)
    if args.step_ms <= 0 or args.bucket_mib <= 0 or args.alpha_us < 0 or args.beta_ns < 0:
        parser.error("--step-ms and --bucket-mib must be positive, --alpha-us and --beta-ns >= 0")
    if (args.fitted_alpha_us is None) != (args.fitted_beta_ns is None):
        parser.error("give both --fitted-alpha-us and --fitted-beta-ns, or neither")

    n_bytes = args.parameters * m.FP32_BYTES
    links = [(args.alpha_us * 1e-6, args.beta_ns * 1e-9)]
    names = [f"alpha {args.alpha_us:g} us, beta {args.beta_ns:g} ns/B"]
    if args.fitted_alpha_us is not None:
        links.append((args.fitted_alpha_us * 1e-6, args.fitted_beta_ns * 1e-9))
        names.append(f"fitted: alpha {args.fitted_alpha_us:g} us, beta {args.fitted_beta_ns:g} ns/B")
    print(f"ResNet-18: {args.parameters:,} fp32 gradients ({n_bytes / 2**20:.1f} MiB), "
          f"buckets of {args.bucket_mib:g} MiB, compute {args.step_ms:g} ms per step per GPU")
    header = "| GPUs |"
    rule = "|---:|"
    for name in names:
        header += f" allreduce ms ({name}) | efficiency, no overlap | efficiency, overlap |"
        rule += "---:|---:|---:|"
    print(header + " Horovod (published) |")
    print(rule + "---:|")
    rows = m.projection_rows([8, 16, 32, 64, 128, 256, 512], args.step_ms * 1e-3, n_bytes, links,
                             args.bucket_mib * 2**20)
    for p, cells in rows:
        line = f"| {p} |"
        for comm, plain, overlapped in cells:
            line += f" {comm * 1e3:.1f} | {plain:.2f} | {overlapped:.2f} |"
        horovod = f"~{m.HOROVOD_512_GPU_EFFICIENCY:.2f} (Inception V3, ResNet-101)" if p == 512 else ""
        print(line + f" {horovod} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
