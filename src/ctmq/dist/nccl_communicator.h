// The communicator of ranks that train on GPUs: NCCL for tensors on the GPU,
// the control communicator (MPI) for everything else.
//
// NCCL is bootstrapped over the existing ranks, as the NCCL guide's
// "Example 2: one device per process" does with MPI: rank 0 makes the
// ncclUniqueId, `control` broadcasts it, every rank calls ncclCommInitRank on
// its own GPU. Then:
//   - allreduce_sum / broadcast of CUDA tensors: ncclAllReduce / ncclBroadcast
//     on the current CUDA stream (grouped; asynchronous to the host, ordered
//     with the kernels around them, no host staging);
//   - start_allreduce_sum of a CUDA tensor: ncclAllReduce on a side stream
//     that first waits for the current stream; wait() makes the current stream
//     wait for it (the host never blocks), so a gradient bucket reduces while
//     backward computes the layers below;
//   - CPU tensors, any(), barrier(), abort(): `control`.
// Gradient hooks of a GPU model run on autograd's device thread: NCCL calls
// may come from there (starts_from_any_thread()), never from two threads at once.
//
// Built only with CTMQ_WITH_NCCL (CMake found a CUDA LibTorch and NCCL:
// CTMQ_NCCL_ROOT, docs/training.md "Several GPUs"). Without it
// nccl_available() is false and make_nccl_communicator throws.
#pragma once

#include <memory>

#include "ctmq/dist/communicator.h"

namespace ctmq::dist {

// True when this build has the NCCL communicator.
bool nccl_available();

// NCCL over `control`'s ranks on CUDA device `device_index` (this rank's GPU,
// dist::rank_device). `control` must outlive the result. Collective: every
// rank calls it. Throws ctmq::Error naming NCCL's error and what to check
// (one GPU per rank: NCCL refuses two ranks on one GPU), or, without
// CTMQ_WITH_NCCL, saying how to build with NCCL or to use MPI.
//
// Failures: a failed NCCL call, or the communicator's destruction while an
// exception unwinds, aborts it (ncclCommAbort: never blocks on a dead peer);
// a watchdog (dist/collective_watchdog.h) polls NCCL's asynchronous errors
// and, when `timeout_s` > 0, ends the rank if an enqueued collective has not
// run after `timeout_s` seconds ([train] collective-timeout).
std::unique_ptr<Communicator> make_nccl_communicator(Communicator& control, int device_index,
                                                     double timeout_s = 0);

}  // namespace ctmq::dist
