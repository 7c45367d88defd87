#include "ctmq/eval/evaluator.h"

#include <cmath>
#include <limits>
#include <numeric>

#include "ctmq/common/error.h"
#include "ctmq/data/distributed_sampler.h"
#include "ctmq/model/batch_norm.h"
#include "ctmq/quant/layer_quantizer.h"

namespace ctmq::eval {
namespace {

std::vector<int64_t> range(int64_t begin, int64_t end) {
  std::vector<int64_t> out(static_cast<size_t>(std::max<int64_t>(0, end - begin)));
  std::iota(out.begin(), out.end(), begin);
  return out;
}

}  // namespace

EvalResult evaluate(model::NetworkImpl& net, const data::ShardDataset& test,
                    const EvalOptions& options, dist::Communicator& comm) {
  CTMQ_CHECK(options.batch_per_rank >= 1,
             "evaluation batch per rank " << options.batch_per_rank << " must be at least 1");
  CTMQ_CHECK(options.limit >= 0, "[data] test-limit = " << options.limit << " must be >= 0");
  const int64_t classes = test.num_classes();
  CTMQ_CHECK(net.options().num_classes == classes,
             "the network has " << net.options().num_classes << " classes but the test set has "
                                << classes << "; evaluate on the data set it was trained on");
  const int64_t n = options.limit > 0 ? std::min(options.limit, test.size()) : test.size();
  CTMQ_CHECK(n > 0, "the test set is empty");
  const int64_t begin = n * comm.rank() / comm.size();
  const int64_t end = n * (comm.rank() + 1) / comm.size();

  torch::NoGradGuard no_grad;
  net.eval();
  net.to(options.device);
  const int64_t k = std::min<int64_t>(5, classes);
  double loss_sum = 0;
  int64_t correct1 = 0, correct5 = 0;
  torch::Tensor confusion = torch::zeros({classes * classes}, torch::kInt64);
  for (int64_t first = begin; first < end; first += options.batch_per_rank) {
    data::Batch batch = test.get_batch(range(first, std::min(end, first + options.batch_per_rank)));
    torch::Tensor logits = net.forward(batch.images.to(options.device)).to(torch::kCPU);
    torch::Tensor labels = batch.labels;
    loss_sum += torch::nn::functional::cross_entropy(
                    logits.to(torch::kFloat64), labels,
                    torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                    .item<double>();
    torch::Tensor topk = std::get<1>(logits.topk(k, 1));
    torch::Tensor predicted = topk.select(1, 0);
    correct1 += predicted.eq(labels).sum().item<int64_t>();
    correct5 += topk.eq(labels.unsqueeze(1)).any(1).sum().item<int64_t>();
    confusion.index_add_(0, labels * classes + predicted, torch::ones_like(labels));
  }
  std::vector<torch::Tensor> sums = {
      torch::tensor({loss_sum}, torch::kFloat64),
      torch::tensor({correct1, correct5, end - begin}, torch::kInt64), confusion};
  comm.allreduce_sum(sums);

  EvalResult r;
  r.samples = sums[1][2].item<int64_t>();
  CTMQ_ASSERT(r.samples == n);
  r.loss = sums[0][0].item<double>() / static_cast<double>(n);
  r.top1 = 100.0 * static_cast<double>(sums[1][0].item<int64_t>()) / static_cast<double>(n);
  if (classes > 5)
    r.top5 = 100.0 * static_cast<double>(sums[1][1].item<int64_t>()) / static_cast<double>(n);
  r.confusion = sums[2].view({classes, classes});
  torch::Tensor per_class = r.confusion.sum(1);
  for (int64_t c = 0; c < classes; ++c) {
    const int64_t total = per_class[c].item<int64_t>();
    r.per_class_accuracy.push_back(
        total == 0 ? std::numeric_limits<double>::quiet_NaN()
                   : 100.0 * static_cast<double>(r.confusion[c][c].item<int64_t>()) / total);
  }
  return r;
}

int64_t recalibrate_batch_norm(model::NetworkImpl& net, const data::ShardDataset& train,
                               const BatchNormRecalibration& options, dist::Communicator& comm) {
  CTMQ_CHECK(options.batches >= 1,
             "[eval] bn-recalibrate-batches = " << options.batches << " must be >= 1 (0 = off)");
  const int64_t available =
      options.limit > 0 ? std::min(options.limit, train.size()) : train.size();
  data::SamplerOptions sampler_options;
  sampler_options.dataset_size = available;
  sampler_options.global_batch = std::min(options.batch, available) / comm.size() * comm.size();
  CTMQ_CHECK(sampler_options.global_batch >= comm.size(),
             "BatchNorm re-estimation needs at least one training sample per rank; have "
                 << available << " for " << comm.size() << " ranks");
  sampler_options.world_size = comm.size();
  sampler_options.rank = comm.rank();
  sampler_options.seed = options.seed;
  data::DistributedSampler sampler(sampler_options);

  std::vector<model::BatchNorm2dImpl*> norms;
  for (const auto& module : net.modules(/*include_self=*/false))
    if (auto* bn = dynamic_cast<model::BatchNorm2dImpl*>(module.get())) norms.push_back(bn);
  std::vector<c10::optional<double>> momenta;
  for (auto* bn : norms) {
    momenta.push_back(bn->options.momentum());
    bn->reset_running_stats();
    bn->options.momentum(c10::nullopt);  // cumulative average over the batches below
  }
  if (comm.size() > 1) {
    auto sum = [&comm](std::vector<torch::Tensor>& t) { comm.allreduce_sum(t); };
    model::set_stats_reducer(net, sum);
    quant::set_rank_sum(net, sum);
  }

  torch::NoGradGuard no_grad;
  net.to(options.device);
  net.train();
  const int64_t steps = sampler.steps_per_epoch();
  int64_t used = 0;
  for (; used < options.batches; ++used) {
    data::Batch batch = train.get_batch(sampler.indices(used / steps, used % steps));
    net.forward(batch.images.to(options.device));
  }
  net.eval();
  model::set_stats_reducer(net, {});
  quant::set_rank_sum(net, {});
  for (size_t i = 0; i < norms.size(); ++i) norms[i]->options.momentum(momenta[i]);
  return used;
}

bool normalise_as_trained(const model::NetworkImpl& net, data::ShardDataset& data,
                          const std::string& source) {
  const model::Preprocessing& trained = net.options().preprocessing;
  if (!trained.known()) return false;
  data.use_normalisation(trained.mean, trained.std_dev, source);
  return true;
}

}  // namespace ctmq::eval
