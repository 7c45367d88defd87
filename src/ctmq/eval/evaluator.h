// Evaluation of a network on a test set: top-1, top-5, per-class accuracy,
// mean loss and confusion matrix, optionally after re-estimating BatchNorm
// statistics on training batches (method.md, "Optional at every stage end").
//
// MPI-parallel: rank r of R evaluates positions [r*n/R, (r+1)*n/R) of the
// first n test samples (disjoint, union = all n); counts and sums are reduced
// over ranks, so every rank returns the same result, equal to one rank's.
#pragma once

#include <torch/torch.h>

#include <optional>
#include <string>
#include <vector>

#include "ctmq/data/shard_dataset.h"
#include "ctmq/dist/communicator.h"
#include "ctmq/model/network.h"

namespace ctmq::eval {

struct EvalOptions {
  int64_t batch_per_rank = 256;  // samples per forward pass on each rank (>= 1)
  int64_t limit = 0;             // evaluate the first `limit` test samples; 0 = all
  torch::Device device = torch::kCPU;
};

struct EvalResult {
  int64_t samples = 0;
  double top1 = 0;             // percent
  std::optional<double> top5;  // percent; only when there are more than 5 classes
  double loss = 0;             // mean cross-entropy (natural log) per sample
  std::vector<double>
      per_class_accuracy;   // percent per true class; NaN for a class with no samples
  torch::Tensor confusion;  // int64 [classes, classes]: rows true, columns predicted
};

// Evaluates `net` (switched to eval mode) on `test`. Throws ctmq::Error when
// the network's class count differs from the data set's.
EvalResult evaluate(model::NetworkImpl& net, const data::ShardDataset& test,
                    const EvalOptions& options, dist::Communicator& comm);

// Makes `data` normalise its images as `net` was trained
// (model::Preprocessing recorded in its network file), never with the data's
// own statistics: a test set is seen as training saw its images. Returns false
// and leaves `data` as it is when the network does not know its preprocessing
// (a file older than format 3). Throws ctmq::Error naming `source` when the
// channel counts differ.
bool normalise_as_trained(const model::NetworkImpl& net, data::ShardDataset& data,
                          const std::string& source);

struct BatchNormRecalibration {
  int64_t batches = 100;  // global batches of training data
  int64_t batch = 256;    // global batch size (divisible by the number of ranks)
  int64_t limit = 0;      // draw from the first `limit` training samples; 0 = all
  uint64_t seed = 0;      // which shuffled samples are drawn
  torch::Device device = torch::kCPU;
};

// Replaces the running mean/variance of every BatchNorm2d with their plain
// average over `batches` global training batches (train-mode forward without
// gradient; statistics synchronised over ranks). Parameters and quantizer
// settings are untouched; the network is left in eval mode. Batches continue
// into later shuffled epochs when the data set holds fewer. Returns the
// number of batches used.
int64_t recalibrate_batch_norm(model::NetworkImpl& net, const data::ShardDataset& train,
                               const BatchNormRecalibration& options, dist::Communicator& comm);

}  // namespace ctmq::eval
