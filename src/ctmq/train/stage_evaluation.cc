#include "ctmq/train/stage_evaluation.h"

#include <chrono>
#include <filesystem>

#include "ctmq/common/error.h"
#include "ctmq/eval/evaluator.h"

namespace ctmq::train {
namespace {

const std::string& existing_manifest(const std::string& path) {
  CTMQ_CHECK(!path.empty(),
             "[train] eval-every needs [data] test-manifest (the test shards' manifest.json, as "
             "for ctmq-eval); set it, or eval-every = 0");
  CTMQ_CHECK(std::filesystem::is_regular_file(path),
             "[data] test-manifest " << path
                                     << " does not exist ([train] eval-every needs it); build "
                                        "the test shards with ctmq-shard first, or set "
                                        "eval-every = 0");
  return path;
}

}  // namespace

StageEvaluation::StageEvaluation(const std::string& test_manifest, int64_t test_limit,
                                 int64_t every_epochs, int64_t batch, torch::Device device,
                                 const model::NetworkImpl& net)
    : test_(existing_manifest(test_manifest)),
      limit_(test_limit),
      every_epochs_(every_epochs),
      batch_(batch),
      device_(device) {
  CTMQ_CHECK(every_epochs >= 1, "[train] eval-every = " << every_epochs << " must be >= 1 here");
  CTMQ_CHECK(test_.num_classes() == net.options().num_classes,
             "[data] test-manifest " << test_manifest << " has " << test_.num_classes()
                                     << " classes but the training set has "
                                     << net.options().num_classes
                                     << "; name the test split of the same data set");
  eval::normalise_as_trained(net, test_, "the network's normalisation ([data] train-manifest)");
}

bool StageEvaluation::due(int64_t global_step, int64_t steps_per_epoch, int64_t total_steps) const {
  return global_step < total_steps && global_step % steps_per_epoch == 0 &&
         (global_step / steps_per_epoch) % every_epochs_ == 0;
}

EvalMetrics StageEvaluation::run(model::NetworkImpl& net, int64_t global_step,
                                 int64_t steps_per_epoch, dist::Communicator& comm) const {
  const auto start = std::chrono::steady_clock::now();
  eval::EvalOptions options;
  options.batch_per_rank = batch_;
  options.limit = limit_;
  options.device = device_;
  const eval::EvalResult r = eval::evaluate(net, test_, options, comm);
  net.train();
  EvalMetrics m;
  m.epoch = global_step / steps_per_epoch - 1;
  m.step = steps_per_epoch;
  m.global_step = global_step;
  m.samples = r.samples;
  m.top1 = r.top1;
  m.top5 = r.top5;
  m.loss = r.loss;
  m.eval_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return m;
}

}  // namespace ctmq::train
