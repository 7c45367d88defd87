"""Data-parallel scaling efficiency from a ring-allreduce cost model.

Cost of one allreduce of n bytes over p ranks with the ring algorithm (Thakur,
Rabenseifner & Gropp 2005, "Optimization of collective communication operations
in MPICH", IJHPCA 19(1); reduce-scatter then allgather, 2(p-1) steps of n/p
bytes; its bandwidth term is optimal, Patarasuk & Yuan 2009, JPDC 69(2)):

    t(n, p) = 2 (p - 1) alpha + 2 (p - 1) / p * n * beta

alpha: seconds per message (latency), beta: seconds per byte (inverse
bandwidth). Gradients are fused into buckets (as dist::GradientAllreducer and
Horovod's tensor fusion do): k = ceil(n / bucket) allreduces pay k latency
terms and one bandwidth term for all n bytes.

Efficiency of p workers against one, at a fixed per-worker batch (weak
scaling, as in Horovod's figures) with per-worker compute time t_c:
  - no overlap (ctmq on CPU: the allreduce runs after backward):
        e = t_c / (t_c + t_comm)
  - overlap with backward (Horovod, PyTorch DDP): buckets are reduced while
    backward computes the rest; at best everything but the last bucket hides
    behind the backward pass (a fraction f_bw of t_c):
        exposed = max(t_comm - f_bw * t_c, t_comm / k)
        e = t_c / (t_c + exposed)

What the model leaves out: hierarchical allreduce (NVLink inside a node, the
network only between nodes) and NCCL's tree algorithm (log p latency), both of
which real 512-GPU runs use; network contention and congestion; stragglers
(the slowest worker sets the pace, and grows with p); the interference of
communication with compute on the same GPU (memory bandwidth, SMs used by
NCCL); data loading; BatchNorm synchronisation (per-GPU BatchNorm is usual at
this scale); and the latency Horovod's coordinator adds per fusion cycle.
"""

import math

# ResNet-18 (torchvision): 11,689,512 parameters, all trained, fp32 gradients.
RESNET18_PARAMETERS = 11_689_512
FP32_BYTES = 4

# Assumed, not measured here: 100 Gb/s InfiniBand EDR between nodes, one
# message's latency through the NCCL/MPI stack of ~5 us.
INFINIBAND_100G_ALPHA_S = 5e-6
INFINIBAND_100G_BETA_S_PER_BYTE = 1.0 / 12.5e9

# Horovod's published figure (Sergeev & Del Balso 2018, "Horovod: fast and
# easy distributed deep learning in TensorFlow", arXiv:1802.05799): ~90%
# (88% in the figure) scaling efficiency at 512 Pascal GPUs for Inception V3
# and ResNet-101, 25 Gb/s RoCE, tensor fusion, allreduce overlapped with
# backward. Not ResNet-18: the nearest published point.
HOROVOD_512_GPU_EFFICIENCY = 0.90


def ring_allreduce_s(n_bytes, p, alpha_s, beta_s_per_byte):
    """Seconds for one ring allreduce of n_bytes over p ranks (0 on one rank)."""
    if p < 1 or n_bytes < 0:
        raise ValueError(f"ring_allreduce_s: need p >= 1 and n_bytes >= 0, got p={p}, n_bytes={n_bytes}")
    if p == 1:
        return 0.0
    return 2 * (p - 1) * alpha_s + 2 * (p - 1) / p * n_bytes * beta_s_per_byte


def bucketed_allreduce_s(n_bytes, p, alpha_s, beta_s_per_byte, bucket_bytes):
    """Seconds to allreduce n_bytes fused into buckets of at most bucket_bytes."""
    if bucket_bytes <= 0:
        raise ValueError(f"bucket_bytes must be positive, got {bucket_bytes}")
    if p == 1 or n_bytes == 0:
        return 0.0
    k = math.ceil(n_bytes / bucket_bytes)
    return k * 2 * (p - 1) * alpha_s + 2 * (p - 1) / p * n_bytes * beta_s_per_byte


def efficiency(p, compute_s, n_bytes, alpha_s, beta_s_per_byte, bucket_bytes,
               overlap=False, backward_fraction=2.0 / 3.0):
    """Scaling efficiency of p workers (1.0 for p == 1); see the module docstring."""
    if compute_s <= 0:
        raise ValueError(f"compute_s must be positive, got {compute_s}")
    if not 0.0 <= backward_fraction <= 1.0:
        raise ValueError(f"backward_fraction must lie in [0, 1], got {backward_fraction}")
    comm = bucketed_allreduce_s(n_bytes, p, alpha_s, beta_s_per_byte, bucket_bytes)
    if comm == 0.0:
        return 1.0
    if overlap:
        k = math.ceil(n_bytes / bucket_bytes)
        exposed = max(comm - backward_fraction * compute_s, comm / k)
    else:
        exposed = comm
    return compute_s / (compute_s + exposed)


def projection_rows(gpus, compute_s, n_bytes, links, bucket_bytes):
    """[(p, comm seconds per link, efficiency without / with overlap per link)]

    links: [(alpha_s, beta_s_per_byte)].
    """
    rows = []
    for p in gpus:
        cells = []
        for alpha, beta in links:
            cells.append((bucketed_allreduce_s(n_bytes, p, alpha, beta, bucket_bytes),
                          efficiency(p, compute_s, n_bytes, alpha, beta, bucket_bytes),
                          efficiency(p, compute_s, n_bytes, alpha, beta, bucket_bytes, overlap=True)))
        rows.append((p, cells))
    return rows
