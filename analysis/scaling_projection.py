#!/usr/bin/env python3
"""Projected data-parallel efficiency of ResNet-18 on 8..512 GPUs (ctmq_analysis/scaling_model.py).

Usage: python3 analysis/scaling_projection.py [--batch-per-gpu 64] [--images-per-s 2600]
           [--step-ms MS] [--alpha-us 5] [--beta-ns 0.08]
           [--fitted-alpha-us A --fitted-beta-ns B] [--bucket-mib 4]

--alpha-us/--beta-ns: the inter-node link (default: 100 Gb/s InfiniBand, assumed).
--fitted-*: alpha and beta fitted on this machine by ctmq-bench-mpi-scaling; when
given, a second pair of columns shows the same projection with that link.
--batch-per-gpu / --images-per-s: one GPU's compute time per step is
batch / rate (defaults: the ImageNet recipe's 256 images over its 4 GPUs, at
an assumed 2,600 img/s: ResNet-18 in fp32 with TF32 convolutions and W1A1
fake quantization, no mixed precision, as ctmq trains); --step-ms overrides.
--bucket-mib: ctmq's [train] allreduce-bucket-mb (default 4).
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
    parser.add_argument("--batch-per-gpu", type=int, default=64,
                        help="images per GPU per step (default 64: the ImageNet recipe's global "
                             "batch 256 over its 4 GPUs)")
    parser.add_argument("--images-per-s", type=float, default=2600.0,
                        help="one GPU's training rate (default 2,600: an assumption, not measured)")
    parser.add_argument("--step-ms", type=float,
                        help="per-GPU compute time of one step in ms; overrides batch / rate")
    parser.add_argument("--alpha-us", type=float, default=m.INFINIBAND_100G_ALPHA_S * 1e6)
    parser.add_argument("--beta-ns", type=float, default=m.INFINIBAND_100G_BETA_S_PER_BYTE * 1e9)
    parser.add_argument("--fitted-alpha-us", type=float)
    parser.add_argument("--fitted-beta-ns", type=float)
    parser.add_argument("--bucket-mib", type=float, default=4.0,
                        help="gradient bucket size in MiB (default 4, ctmq's "
                             "[train] allreduce-bucket-mb; PyTorch DDP's is 25)")
    parser.add_argument("--parameters", type=int, default=m.RESNET18_PARAMETERS)
    args = parser.parse_args(argv)
    if args.step_ms is None:
        if args.batch_per_gpu <= 0 or args.images_per_s <= 0:
            parser.error("--batch-per-gpu and --images-per-s must be positive")
        args.step_ms = 1000.0 * args.batch_per_gpu / args.images_per_s
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
          f"buckets of {args.bucket_mib:g} MiB, compute {args.step_ms:.1f} ms per step per GPU")
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
