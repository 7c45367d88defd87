// Keeping replicas of a model identical across ranks, checking that they are,
// and reducing metrics.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "ctmq/dist/communicator.h"

namespace ctmq::dist {

// Copies every parameter and buffer of `module` from rank `root` to all ranks
// (after initialisation and after loading weights). REQUIRES: the same
// architecture on every rank.
void broadcast_module_state(Communicator& comm, torch::nn::Module& module, int root = 0);

// Replaces every floating-point buffer of `module` (BatchNorm's running mean
// and variance) by its mean over ranks, then copies rank 0's result to every
// rank so that the replicas hold the same bits. Ranks that normalise with
// their own batch statistics ([train] sync-batch-norm = per-rank) accumulate
// different running statistics; this reconciles them before an evaluation or
// a checkpoint. Parameters and integer buffers are left alone. Collective.
void average_buffers(Communicator& comm, torch::nn::Module& module);

// zlib CRC-32 of the bytes of every parameter, then every buffer, of `module`
// in registration order (device tensors are copied to the host first).
uint32_t module_state_crc(const torch::nn::Module& module);

// Compares every rank's module_state_crc with rank 0's (a broadcast and a sum
// over ranks: a few bytes). Collective. When replicas differ, throws
// ctmq::Error on every rank, naming `where` (e.g. "checkpoint at step 200")
// and the ranks whose state differs from rank 0's: data-parallel training
// keeps identical replicas, so a difference is a fault (a rank initialised
// from its own data, a reduction that was skipped) that would otherwise go
// unseen, since only rank 0's model is saved.
void check_replicas_agree(Communicator& comm, const torch::nn::Module& module,
                          const std::string& where);

// Sums `values` over ranks (e.g. loss sums, correct counts, sample counts).
std::vector<double> allreduce_sum_values(Communicator& comm, std::vector<double> values);

}  // namespace ctmq::dist
