#include "ctmq/train/trainer.h"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "ctmq/common/atomic_file.h"
#include "ctmq/common/error.h"
#include "ctmq/common/log.h"
#include "ctmq/common/preemption.h"
#include "ctmq/common/run_layout.h"
#include "ctmq/data/augment.h"
#include "ctmq/data/batch_loader.h"
#include "ctmq/data/distributed_sampler.h"
#include "ctmq/data/shard_dataset.h"
#include "ctmq/dist/gradient_allreducer.h"
#include "ctmq/dist/module_sync.h"
#include "ctmq/dist/thread_budget.h"
#include "ctmq/model/batch_norm.h"
#include "ctmq/model/network_description.h"
#include "ctmq/model/torchvision_import.h"
#include "ctmq/model/weights_io.h"
#include "ctmq/train/checkpoint.h"
#include "ctmq/train/lr_schedule.h"
#include "ctmq/train/metrics_log.h"
#include "ctmq/train/progress_reporter.h"
#include "ctmq/train/stage_evaluation.h"
#include "ctmq/train/stage_lock.h"
#include "ctmq/train/tensorboard_log.h"

namespace ctmq::train {
namespace fs = std::filesystem;
namespace {

enum class InitKind { kNone, kStage, kTorchvision, kWeights };
struct InitSource {
  InitKind kind = InitKind::kNone;
  std::string path;
};

InitSource resolve_init(const TrainOptions& o, const RunLayout& layout) {
  InitSource init;
  auto after_colon = [&](const char* prefix) { return o.init.substr(std::strlen(prefix)); };
  if (o.init == "none") return init;
  if (o.init.rfind("torchvision:", 0) == 0) {
    init = {InitKind::kTorchvision, after_colon("torchvision:")};
  } else if (o.init.rfind("weights:", 0) == 0) {
    init = {InitKind::kWeights, after_colon("weights:")};
  } else {
    CTMQ_CHECK(o.init != o.stage, "--init " << o.init << ": a stage cannot start from itself");
    CTMQ_CHECK(layout.is_done(o.init), "--init " << o.init << ": stage " << o.init << " of run "
                                                 << layout.root() << " is not DONE (no "
                                                 << layout.done_marker(o.init)
                                                 << "); train it first, or check the stage name");
    init = {InitKind::kStage, layout.final_weights(o.init)};
  }
  CTMQ_CHECK(!init.path.empty() && fs::is_regular_file(init.path),
             "--init " << o.init << ": file " << init.path << " does not exist");
  return init;
}

torch::Device choose_device(const TrainOptions& o, const dist::Communicator& comm) {
  if (o.device == DeviceKind::kCpu) return torch::kCPU;
  CTMQ_CHECK(torch::cuda::is_available(),
             "--device cuda: no CUDA device is visible (or LibTorch was built without CUDA); "
             "use --device cpu");
  const int64_t count = static_cast<int64_t>(torch::cuda::device_count());
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(comm.local_rank() % count));
}

void check_checkpoint_matches(const CheckpointMeta& m, const TrainOptions& o,
                              const model::ModelOptions& mo, const std::string& path,
                              int world_size) {
  auto differs = [&](const std::string& what, const std::string& found,
                     const std::string& expected) {
    CTMQ_FAIL("checkpoint " << path << " was written with " << what << " " << found
                            << ", but this run has " << expected
                            << "; it belongs to another configuration: delete "
                            << fs::path(path).parent_path().string()
                            << " to start the stage again, or use the original configuration");
  };
  if (m.stage != o.stage) differs("stage", m.stage, o.stage);
  if (m.bits != o.bits) differs("bits", m.bits.tag(), o.bits.tag());
  model::check_same_network(m.network(), model::describe_network(mo), "checkpoint " + path,
                            "it belongs to another configuration: delete " +
                                fs::path(path).parent_path().string() +
                                " to start the stage again, or use the original configuration");
  if (m.world_size != world_size) {
    CTMQ_WARN("checkpoint " << path << " was written by " << m.world_size << " ranks, resuming on "
                            << world_size << ": the result will not be bit-identical to an "
                            << "uninterrupted run");
  }
}

// The accurate model that supervises this stage (--distill-from), in eval
// mode on `device`; nullptr without one. It must be the same network.
std::shared_ptr<model::NetworkImpl> load_teacher(const TrainOptions& o, const RunLayout& layout,
                                                 const model::ModelOptions& student,
                                                 torch::Device device) {
  if (o.distill_from == "none") return nullptr;
  CTMQ_CHECK(layout.is_done(o.distill_from),
             "--distill-from " << o.distill_from << ": stage " << o.distill_from << " of run "
                               << layout.root() << " is not DONE (no "
                               << layout.done_marker(o.distill_from)
                               << "); train it first, or check the stage name");
  auto teacher = model::load_network(layout.final_weights(o.distill_from));
  const model::ModelOptions& t = teacher->options();
  CTMQ_CHECK(model::same_network(model::describe_network(t), model::describe_network(student)),
             "--distill-from " << o.distill_from << ": the teacher is another network ("
                               << model::to_string(model::describe_network(t)) << "; this stage: "
                               << model::to_string(model::describe_network(student))
                               << "); distil from a stage of this run");
  // The teacher sees this stage's batches: it must have been trained on
  // inputs normalised the same way (format-3 files record it).
  CTMQ_CHECK(!t.preprocessing.known() || t.preprocessing == student.preprocessing,
             "--distill-from " << o.distill_from
                               << ": the teacher was trained with another input normalisation "
                                  "(another [data] train-manifest); distil from a stage trained "
                                  "on this stage's data");
  teacher->to(device);
  teacher->eval();
  for (auto& p : teacher->parameters()) p.set_requires_grad(false);
  return teacher;
}

// Cross-entropy with the labels, mixed with ReActNet's distributional loss
// (cross-entropy against the teacher's softmax) when a teacher is given:
//   (1 - w) CE(logits, labels) + w * mean_n( -sum_c p_teacher log softmax(logits) ).
torch::Tensor training_loss(const torch::Tensor& logits, const torch::Tensor& labels,
                            model::NetworkImpl* teacher, const torch::Tensor& images, double w) {
  torch::Tensor ce = torch::nn::functional::cross_entropy(logits, labels);
  if (teacher == nullptr) return ce;
  torch::Tensor target;
  {
    torch::NoGradGuard no_grad;
    target = torch::softmax(teacher->forward(images), 1);
  }
  torch::Tensor distill = -(target * torch::log_softmax(logits, 1)).sum(1).mean();
  return ce * (1.0 - w) + distill * w;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

StageResult train_stage(const TrainOptions& o, dist::Communicator& comm) {
  validate(o);
  const bool root = comm.rank() == 0;
  RunLayout layout(o.run_dir);
  StageResult result;
  if (layout.is_done(o.stage)) {
    if (root) CTMQ_INFO("stage " << o.stage << " is already DONE; nothing to do");
    result.outcome = StageOutcome::kAlreadyDone;
    return result;
  }
  install_preemption_handlers();
  const InitSource init = resolve_init(o, layout);
  const torch::Device device = choose_device(o, comm);
  const dist::ThreadBudget threads = dist::resolve_threads(o.threads, dist::ranks_per_node(comm));
  torch::set_num_threads(threads.threads);
  const int loader_workers =
      o.loader_workers >= 0 ? o.loader_workers : dist::default_loader_workers(threads.threads);

  // Data.
  CTMQ_CHECK(fs::is_regular_file(o.train_manifest),
             "[data] train-manifest " << o.train_manifest
                                      << " does not exist; build the shards with ctmq-shard "
                                         "(e.g. data-prep/fashion-mnist.sh) first");
  data::ShardDataset dataset(o.train_manifest);
  signal_at_test_point("setup");
  const int64_t samples =
      o.train_limit > 0 ? std::min(o.train_limit, dataset.size()) : dataset.size();
  CTMQ_CHECK(comm.size() <= samples,
             comm.size() << " ranks but only " << samples << " training samples; use fewer ranks");
  CTMQ_CHECK(o.batch % comm.size() == 0,
             "--batch " << o.batch << " (global) is not divisible by " << comm.size() << " ranks");
  CTMQ_CHECK(o.batch <= samples, "--batch " << o.batch << " exceeds the " << samples
                                            << " training samples; lower --batch");
  const uint64_t data_seed = stage_data_seed(o.seed, o.stage, o.data_order);
  data::DistributedSampler sampler({samples, o.batch, comm.size(), comm.rank(), data_seed, true});
  const data::AugmentOptions augment{o.augment, o.augment_pad, data_seed};
  const int64_t steps_per_epoch = sampler.steps_per_epoch();
  const HyperParameters hyper = resolve_hyper_parameters(o, steps_per_epoch);

  // Model at the stage's depths; the init weights come next.
  model::ModelOptions model_options = o.model;
  model_options.num_classes = dataset.num_classes();
  model_options.in_channels = dataset.channels();
  model_options.preprocessing = {dataset.mean(), dataset.std_dev()};
  torch::manual_seed(o.seed);
  auto net = model::make_network(model_options);
  net->set_bit_depths(o.bits);

  // Resume: rank 0 picks the newest valid checkpoint; every rank loads that one.
  CheckpointStore store(layout.checkpoints(o.stage), o.keep_checkpoints);
  std::optional<Checkpoint> resume;
  if (root) resume = store.load_newest_valid(device);
  std::vector<torch::Tensor> chosen{
      torch::full({1}, resume ? resume->meta().global_step : -1, torch::kInt64)};
  comm.broadcast(chosen, 0);
  const int64_t resume_step = chosen[0].item<int64_t>();
  if (!root && resume_step >= 0)
    resume = CheckpointStore::load(store.path_for(resume_step), device);
  if (resume) {
    check_checkpoint_matches(resume->meta(), o, model_options, resume->path(), comm.size());
    CTMQ_CHECK(resume->meta().global_step <= hyper.total_steps,
               "checkpoint " << resume->path() << " is at step " << resume->meta().global_step
                             << " but this stage has only " << hyper.total_steps
                             << " steps; were --epochs or --batch changed?");
  } else if (init.kind == InitKind::kStage || init.kind == InitKind::kWeights) {
    model::load_weights_into(*net, init.path);
  } else if (init.kind == InitKind::kTorchvision) {
    model::import_torchvision_state_dict(*net, init.path, o.pretrained_classifier);
  }
  signal_at_test_point("weights-loaded");
  net->to(device);
  std::shared_ptr<model::NetworkImpl> teacher = load_teacher(o, layout, model_options, device);
  std::optional<StageEvaluation> evaluation;
  if (o.eval_every > 0)
    evaluation.emplace(o.test_manifest, o.test_limit, o.eval_every, o.batch / comm.size(), device,
                       *net);
  // On several ranks BatchNorm statistics are summed over ranks. With kAlways
  // one rank takes the same synchronised path (the reduction is the identity),
  // so 1 and R ranks run the same arithmetic: with torch's native BatchNorm,
  // 4-bit rounding amplified float32 differences of the statistics to ~1% of
  // the BN biases after one step. The native path is up to 2x faster on a GPU
  // at batch 256 (docs/performance.md), hence the default kMultiRank.
  if (comm.size() > 1 || o.batch_norm_sync == BatchNormSync::kAlways)
    model::set_stats_reducer(*net,
                             [&comm](std::vector<torch::Tensor>& t) { comm.allreduce_sum(t); });
  auto optimizer = make_optimizer(hyper, net->parameters());
  if (resume) resume->restore(*net, *optimizer);
  dist::broadcast_module_state(comm, *net, 0);
  dist::GradientAllreducer allreducer(comm, net->parameters());
  const LrSchedule schedule(hyper.lr, decay_of(hyper.optimizer), hyper.warmup_steps,
                            hyper.total_steps);

  int64_t global_step = resume ? resume->meta().global_step : 0;
  result.resumed_from = resume ? global_step : -1;
  resume.reset();  // frees the archive

  // Everything is checked: from here on the stage directory is written. Rank 0
  // holds the stage's lock until it returns; a second job training this stage
  // is refused here (and, on several ranks, its job aborted).
  std::optional<StageLock> lock;
  std::unique_ptr<MetricsLog> metrics;
  std::unique_ptr<TensorBoardLog> tensorboard;
  if (root) {
    lock.emplace(layout.stage(o.stage));
    // Only this process writes here now: what killed writes left is garbage.
    const int stale = remove_temporaries_in(layout.stage(o.stage)) +
                      remove_temporaries_in(layout.checkpoints(o.stage));
    if (stale > 0)
      CTMQ_INFO("removed " << stale << " temporary file(s) of interrupted writes in "
                           << layout.stage(o.stage));
    write_file_atomically(layout.stage_config(o.stage), o.resolved_config);
    metrics = std::make_unique<MetricsLog>(layout.metrics(o.stage), global_step);
    if (o.tensorboard)
      tensorboard = std::make_unique<TensorBoardLog>(layout.tensorboard(o.stage), global_step == 0);
    CTMQ_INFO("stage " << o.stage << " (" << o.bits.tag() << "): "
                       << (result.resumed_from >= 0
                               ? "resuming at step " + std::to_string(global_step)
                               : "init " + o.init)
                       << ", " << hyper.total_steps << " steps of " << o.batch << " on "
                       << comm.size() << " rank(s) x " << torch::get_num_threads() << " thread(s) ("
                       << threads.reason << "), " << loader_workers << " loader worker(s), "
                       << optimizer_kind_name(hyper.optimizer) << " lr " << hyper.lr << " wd "
                       << hyper.weight_decay << ", data seed " << data_seed << ", augment "
                       << data::augment_name(o.augment)
                       << (teacher ? ", distilled from " + o.distill_from : std::string()));
  }
  ProgressReporter progress(o.stage, hyper.total_steps, global_step, steps_per_epoch, root);
  const auto stage_start = std::chrono::steady_clock::now();
  auto interval_start = stage_start;
  // Running sums since the last log, kept on the device so that a step does
  // not wait for the GPU; read once per log interval.
  auto zero = [&] {
    return torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat64).device(device));
  };
  torch::Tensor loss_sum = zero(), correct = zero();
  double seen = 0;

  auto save_checkpoint = [&] {
    signal_at_test_point("checkpoint-write");
    if (root) {
      CheckpointMeta meta;
      meta.stage = o.stage;
      meta.bits = o.bits;
      meta.set_network(model::describe_network(model_options));
      meta.epoch = global_step / steps_per_epoch;
      meta.step_in_epoch = global_step % steps_per_epoch;
      meta.global_step = global_step;
      meta.world_size = comm.size();
      meta.config = o.resolved_config;
      store.save(meta, *net, *optimizer);
    }
    comm.barrier();  // no rank runs ahead of a checkpoint it may need
  };

  // A signal during set-up is honoured here, before the first step: nothing
  // has changed since the last checkpoint (or the start), so nothing is saved.
  if (comm.any(preemption_requested()) && global_step < hyper.total_steps) {
    if (root) {
      CTMQ_WARN("stage " << o.stage << " preempted before its first step at step " << global_step
                         << " of " << hyper.total_steps << " (signal " << preemption_signal()
                         << "); nothing new to save, rerun the same command to continue");
    }
    result.outcome = StageOutcome::kPreempted;
    result.global_step = global_step;
    return result;
  }
  // The batch of a global step is a function of the step alone (sampler and
  // augmentation are seeded by (data seed, epoch, index)), so the loader's
  // workers produce it ahead, bit-identical to producing it here.
  auto produce_batch = [&](int64_t batch_step) {
    const int64_t epoch = batch_step / steps_per_epoch;
    const std::vector<int64_t> indices = sampler.indices(epoch, batch_step % steps_per_epoch);
    return dataset.get_training_batch(indices, epoch, augment);
  };
  // Pinned host batches make the copy below an asynchronous DMA on CUDA.
  const bool pinned = device.is_cuda() && loader_workers > 0;
  data::BatchLoader loader(produce_batch,
                           {global_step, hyper.total_steps, loader_workers, 0, pinned});
  double interval_wait_s = 0, epoch_wait_s = 0;
  int64_t wait_epoch = global_step / steps_per_epoch;
  net->train();
  while (global_step < hyper.total_steps) {
    const int64_t epoch = global_step / steps_per_epoch;
    const int64_t step = global_step % steps_per_epoch;
    const double waited_before = loader.waited_s();
    data::Batch batch = loader.next();
    const double waited = loader.waited_s() - waited_before;
    if (epoch != wait_epoch) epoch_wait_s = 0;
    wait_epoch = epoch;
    interval_wait_s += waited;
    epoch_wait_s += waited;
    torch::Tensor images = batch.images.to(device, /*non_blocking=*/pinned);
    torch::Tensor labels = batch.labels.to(device, /*non_blocking=*/pinned);

    optimizer->zero_grad();
    torch::Tensor logits = net->forward(images);
    torch::Tensor loss = training_loss(logits, labels, teacher.get(), images, o.distill_weight);
    loss.backward();
    allreducer.average_gradients();
    const double lr = schedule.at(global_step);
    set_learning_rate(*optimizer, lr);
    optimizer->step();
    ++global_step;

    const double n = static_cast<double>(labels.size(0));
    loss_sum += loss.detach().to(torch::kFloat64) * n;
    correct += logits.argmax(1).eq(labels).sum();
    seen += n;
    if (o.after_step) o.after_step(global_step);

    if (global_step % o.log_every == 0 || global_step == hyper.total_steps) {
      auto sums = dist::allreduce_sum_values(comm, {loss_sum.item<double>(), correct.item<double>(),
                                                    seen, interval_wait_s, epoch_wait_s});
      const double elapsed = seconds_since(interval_start);
      StepMetrics m;
      m.stage = o.stage;
      m.w_bits = o.bits.weight;
      m.a_bits = o.bits.activation;
      m.epoch = epoch;
      m.step = step + 1;
      m.global_step = global_step;
      m.total_steps = hyper.total_steps;
      m.loss = sums[0] / sums[2];
      m.accuracy = sums[1] / sums[2];
      m.lr = lr;
      m.images_per_s = elapsed > 0 ? sums[2] / elapsed : 0;
      m.elapsed_s = seconds_since(stage_start);
      m.ranks = comm.size();
      m.data_wait_s = sums[3] / comm.size();
      m.epoch_data_wait_s = sums[4] / comm.size();
      if (root) {
        metrics->append(m);
        if (tensorboard) tensorboard->append(m);
        progress.report(global_step, m.loss, m.accuracy, lr, m.images_per_s,
                        elapsed > 0 ? m.data_wait_s / elapsed : 0);
      }
      result.last_loss = m.loss;
      result.last_accuracy = m.accuracy;
      loss_sum = zero();
      correct = zero();
      seen = 0;
      interval_wait_s = 0;
      interval_start = std::chrono::steady_clock::now();
    }

    const bool stop = comm.any(preemption_requested()) && global_step < hyper.total_steps;
    if (stop || global_step == hyper.total_steps ||
        (o.checkpoint_every > 0 && global_step % o.checkpoint_every == 0)) {
      save_checkpoint();
    }
    if (!stop && evaluation && evaluation->due(global_step, steps_per_epoch, hyper.total_steps)) {
      EvalMetrics e = evaluation->run(*net, global_step, steps_per_epoch, comm);
      // Evaluation time is not training time: images/s stays the step rate.
      interval_start += std::chrono::duration_cast<std::chrono::steady_clock::duration>(
          std::chrono::duration<double>(e.eval_s));
      if (root) {
        e.stage = o.stage;
        e.w_bits = o.bits.weight;
        e.a_bits = o.bits.activation;
        e.elapsed_s = seconds_since(stage_start);
        metrics->append(e);
        if (tensorboard) tensorboard->append(e);
        progress.finish();  // the log line below starts on a line of its own
        CTMQ_INFO("stage " << o.stage << " epoch " << e.epoch + 1 << ": test top-1 " << e.top1
                           << " %, loss " << e.loss << " (" << e.samples << " images, "
                           << format_duration(e.eval_s) << ")");
      }
    }
    if (stop) {
      progress.finish();
      if (root) {
        CTMQ_WARN("stage " << o.stage << " preempted at step " << global_step << " of "
                           << hyper.total_steps << " (signal " << preemption_signal()
                           << "); checkpoint written, rerun the same command to continue");
      }
      result.outcome = StageOutcome::kPreempted;
      result.global_step = global_step;
      return result;
    }
  }
  progress.finish();
  // A signal from here on (the last checkpoint is written) lets the stage
  // finish: writing final.pt and DONE takes well under a second.
  signal_at_test_point("final-write");
  if (root) {
    model::save_network(*net, layout.final_weights(o.stage));
    nlohmann::json note = {{"stage", o.stage},
                           {"w_bits", o.bits.weight},
                           {"a_bits", o.bits.activation},
                           {"global_step", global_step},
                           {"ranks", comm.size()},
                           {"last_loss", result.last_loss},
                           {"last_accuracy", result.last_accuracy}};
    layout.mark_done(o.stage, note.dump());
    CTMQ_INFO("stage " << o.stage << " DONE after " << global_step << " steps ("
                       << format_duration(seconds_since(stage_start)) << ")");
  }
  comm.barrier();
  result.outcome = StageOutcome::kCompleted;
  result.global_step = global_step;
  return result;
}

}  // namespace ctmq::train
