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
#include "ctmq/dist/device.h"
#include "ctmq/dist/gradient_allreducer.h"
#include "ctmq/dist/module_sync.h"
#include "ctmq/dist/shared_directory.h"
#include "ctmq/dist/text_collectives.h"
#include "ctmq/dist/thread_budget.h"
#include "ctmq/model/batch_norm.h"
#include "ctmq/model/network_description.h"
#include "ctmq/model/torchvision_import.h"
#include "ctmq/model/weights_io.h"
#include "ctmq/quant/layer_quantizer.h"
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

// One stage's training, in the three parts of train_stage: prepare() checks
// the inputs and builds everything the steps use (data order, network at the
// stage's depths with its init or checkpoint weights, optimizer), without
// writing; open_logs() takes the stage's lock and opens its logs (rank 0);
// run_steps() trains until the last step or a preemption; finish() writes
// final.pt and DONE.
class StageTrainer {
 public:
  StageTrainer(const TrainOptions& o, dist::Communicator& comm)
      : o_(o), comm_(comm), root_(comm.rank() == 0), layout_(o.run_dir) {}

  // False when the stage is DONE already (nothing to do).
  bool prepare();
  void open_logs();
  // A signal during set-up is honoured before the first step: nothing has
  // changed since the last checkpoint (or the start), so nothing is saved.
  bool preempted_before_first_step();
  // True when preempted (checkpoint written); false after the last step.
  bool run_steps();
  void finish();
  StageResult& result() { return result_; }

 private:
  void prepare_data();
  void prepare_network();
  data::Batch produce_batch(int64_t batch_step) const;
  void log_interval(int64_t epoch, int64_t step, double lr);
  void evaluate_now();
  void save_checkpoint();
  // Per-rank BatchNorm's running statistics averaged, then every rank's
  // replica compared with rank 0's (collective).
  void reconcile_replicas(const std::string& where);
  torch::Tensor zero() const {
    return torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat64).device(device_));
  }

  const TrainOptions& o_;
  dist::Communicator& comm_;
  const bool root_;
  const RunLayout layout_;
  StageResult result_;

  // prepare(): the checked inputs.
  InitSource init_;
  torch::Device device_ = torch::kCPU;
  dist::ThreadBudget threads_;
  int loader_workers_ = 0;
  std::optional<data::ShardDataset> dataset_;
  std::optional<data::DistributedSampler> sampler_;
  data::AugmentOptions augment_;
  uint64_t data_seed_ = 0;
  int64_t steps_per_epoch_ = 0;
  HyperParameters hyper_;
  BatchNormSync bn_sync_ = BatchNormSync::kMultiRank;  // resolved for the device
  // The network and what updates it.
  model::ModelOptions model_options_;
  std::shared_ptr<model::NetworkImpl> net_;
  std::shared_ptr<model::NetworkImpl> teacher_;
  std::optional<StageEvaluation> evaluation_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::optional<dist::GradientAllreducer> allreducer_;
  std::optional<LrSchedule> schedule_;
  std::optional<CheckpointStore> store_;
  int64_t global_step_ = 0;

  // open_logs(): rank 0's lock and logs.
  std::optional<StageLock> lock_;
  std::unique_ptr<MetricsLog> metrics_;
  std::unique_ptr<TensorBoardLog> tensorboard_;

  // run_steps(): the running sums since the last log, kept on the device so
  // that a step does not wait for the GPU; read once per log interval.
  std::optional<ProgressReporter> progress_;
  std::chrono::steady_clock::time_point stage_start_, interval_start_;
  torch::Tensor loss_sum_, correct_;
  double seen_ = 0, interval_wait_s_ = 0, epoch_wait_s_ = 0;
};

bool StageTrainer::prepare() {
  validate(o_);
  // Before any rank reads the run directory on its own: a directory on
  // node-local scratch would otherwise fail on rank k with a confusing error.
  dist::check_shared_directory(comm_, o_.run_dir, "--run-dir");
  if (layout_.is_done(o_.stage)) {
    if (root_) CTMQ_INFO("stage " << o_.stage << " is already DONE; nothing to do");
    result_.outcome = StageOutcome::kAlreadyDone;
    return false;
  }
  install_preemption_handlers();
  init_ = resolve_init(o_, layout_);
  device_ = dist::rank_device(o_.device, comm_);
  threads_ = dist::resolve_threads(o_.threads, comm_.local_size());
  torch::set_num_threads(threads_.threads);
  loader_workers_ =
      o_.loader_workers >= 0 ? o_.loader_workers : dist::default_loader_workers(threads_.threads);
  prepare_data();
  prepare_network();
  return true;
}

void StageTrainer::prepare_data() {
  CTMQ_CHECK(fs::is_regular_file(o_.train_manifest),
             "[data] train-manifest " << o_.train_manifest
                                      << " does not exist; build the shards with ctmq-shard "
                                         "(e.g. data-prep/fashion-mnist.sh) first");
  dataset_.emplace(o_.train_manifest);
  signal_at_test_point("setup");
  const int64_t samples =
      o_.train_limit > 0 ? std::min(o_.train_limit, dataset_->size()) : dataset_->size();
  CTMQ_CHECK(comm_.size() <= samples,
             comm_.size() << " ranks but only " << samples << " training samples; use fewer ranks");
  CTMQ_CHECK(o_.batch % comm_.size() == 0, "--batch " << o_.batch
                                                      << " (global) is not divisible by "
                                                      << comm_.size() << " ranks");
  CTMQ_CHECK(o_.batch <= samples, "--batch " << o_.batch << " exceeds the " << samples
                                             << " training samples; lower --batch");
  data_seed_ = stage_data_seed(o_.seed, o_.stage, o_.data_order);
  sampler_.emplace(
      data::SamplerOptions{samples, o_.batch, comm_.size(), comm_.rank(), data_seed_, true});
  augment_ = {o_.augment, o_.augment_pad, data_seed_};
  steps_per_epoch_ = sampler_->steps_per_epoch();
  hyper_ = resolve_hyper_parameters(o_, steps_per_epoch_);
}

void StageTrainer::prepare_network() {
  // Model at the stage's depths; the init weights come next.
  model_options_ = o_.model;
  model_options_.num_classes = dataset_->num_classes();
  model_options_.in_channels = dataset_->channels();
  model_options_.preprocessing = {dataset_->mean(), dataset_->std_dev()};
  torch::manual_seed(o_.seed);
  net_ = model::make_network(model_options_);
  net_->set_memory_format(o_.memory_format);
  net_->set_bit_depths(o_.bits);

  // Resume: rank 0 picks the newest valid checkpoint and reads it; the others
  // get its bytes from rank 0 (only rank 0 reads the shared storage).
  store_.emplace(layout_.checkpoints(o_.stage), o_.keep_checkpoints);
  std::optional<Checkpoint> resume;
  std::string resume_path, resume_bytes;
  dist::run_on_root(comm_, [&] {
    resume = store_->load_newest_valid(device_);
    if (resume && comm_.size() > 1) {
      resume_path = resume->path();
      resume_bytes = read_file(resume_path);
    }
  });
  dist::broadcast_bytes(comm_, resume_path, 0);
  if (!resume_path.empty()) {
    dist::broadcast_bytes(comm_, resume_bytes, 0);
    if (!root_) resume = CheckpointStore::from_bytes(resume_bytes, resume_path, device_);
    resume_bytes.clear();
  }
  if (resume) {
    check_checkpoint_matches(resume->meta(), o_, model_options_, resume->path(), comm_.size());
    CTMQ_CHECK(resume->meta().global_step <= hyper_.total_steps,
               "checkpoint " << resume->path() << " is at step " << resume->meta().global_step
                             << " but this stage has only " << hyper_.total_steps
                             << " steps; were --epochs or --batch changed?");
  } else {
    // The init weights: rank 0 reads them; broadcast_module_state below
    // gives them to every rank.
    dist::run_on_root(comm_, [&] {
      if (init_.kind == InitKind::kStage || init_.kind == InitKind::kWeights) {
        model::load_weights_into(*net_, init_.path);
      } else if (init_.kind == InitKind::kTorchvision) {
        model::import_torchvision_state_dict(*net_, init_.path, o_.pretrained_classifier);
      }
    });
  }
  signal_at_test_point("weights-loaded");
  net_->to(device_);
  teacher_ = load_teacher(o_, layout_, model_options_, device_);
  if (o_.eval_every > 0)
    evaluation_.emplace(o_.test_manifest, o_.test_limit, o_.eval_every, o_.batch / comm_.size(),
                        device_, *net_);
  // With kMultiRank (kAuto on CPU) BatchNorm statistics are summed over ranks
  // when there are several. With kAlways one rank takes the same synchronised
  // path (the reduction is the identity), so 1 and R ranks run the same
  // arithmetic: with torch's native BatchNorm, 4-bit rounding amplified
  // float32 differences of the statistics to ~1% of the BN biases after one
  // step. The native path is up to 2x faster on a GPU at batch 256
  // (docs/performance.md), hence one rank takes it unless kAlways.
  // kPerRank: each rank's own statistics (DDP's default), no communication;
  // the running statistics are reconciled before evaluations and checkpoints.
  // The quantized layers' data-dependent initialisation (LSQ input steps)
  // sums over ranks whatever BatchNorm does, or each replica would start
  // from its own step and never agree again.
  dist::Communicator* comm = &comm_;  // outlives the network
  const auto sum = [comm](std::vector<torch::Tensor>& t) { comm->allreduce_sum(t); };
  bn_sync_ = resolve_batch_norm_sync(o_.batch_norm_sync, o_.device);
  if (bn_sync_ != BatchNormSync::kPerRank &&
      (comm_.size() > 1 || bn_sync_ == BatchNormSync::kAlways))
    model::set_stats_reducer(*net_, sum);
  if (comm_.size() > 1) quant::set_rank_sum(*net_, sum);
  optimizer_ = make_optimizer(hyper_, net_->parameters());
  if (resume) resume->restore(*net_, *optimizer_);
  dist::broadcast_module_state(comm_, *net_, 0);
  allreducer_.emplace(comm_, net_->parameters(),
                      static_cast<int64_t>(o_.allreduce_bucket_mb * (1 << 20)),
                      o_.overlap_allreduce);
  schedule_.emplace(hyper_.lr, decay_of(hyper_.optimizer), hyper_.warmup_steps, hyper_.total_steps);
  global_step_ = resume ? resume->meta().global_step : 0;
  result_.resumed_from = resume ? global_step_ : -1;
}

// Everything is checked: from here on the stage directory is written. Rank 0
// holds the stage's lock until train_stage returns; a second job training
// this stage is refused here (and, on several ranks, its job aborted).
void StageTrainer::open_logs() {
  if (root_) {
    lock_.emplace(layout_.stage(o_.stage));
    // Only this process writes here now: what killed writes left is garbage.
    const int stale = remove_temporaries_in(layout_.stage(o_.stage)) +
                      remove_temporaries_in(layout_.checkpoints(o_.stage));
    if (stale > 0)
      CTMQ_INFO("removed " << stale << " temporary file(s) of interrupted writes in "
                           << layout_.stage(o_.stage));
    write_file_atomically(layout_.stage_config(o_.stage), o_.resolved_config);
    metrics_ = std::make_unique<MetricsLog>(layout_.metrics(o_.stage), global_step_);
    if (o_.tensorboard)
      tensorboard_ =
          std::make_unique<TensorBoardLog>(layout_.tensorboard(o_.stage), global_step_ == 0);
    CTMQ_INFO("stage " << o_.stage << " (" << o_.bits.tag() << "): "
                       << (result_.resumed_from >= 0
                               ? "resuming at step " + std::to_string(global_step_)
                               : "init " + o_.init)
                       << ", " << hyper_.total_steps << " steps of " << o_.batch << " on "
                       << comm_.size() << " rank(s) x " << torch::get_num_threads()
                       << " thread(s) (" << threads_.reason << "), " << loader_workers_
                       << " loader worker(s), " << optimizer_kind_name(hyper_.optimizer) << " lr "
                       << hyper_.lr << " wd " << hyper_.weight_decay << ", data seed " << data_seed_
                       << ", augment " << data::augment_name(o_.augment)
                       << (teacher_ ? ", distilled from " + o_.distill_from : std::string()));
  }
  progress_.emplace(o_.stage, hyper_.total_steps, global_step_, steps_per_epoch_, root_);
  stage_start_ = interval_start_ = std::chrono::steady_clock::now();
  loss_sum_ = zero();
  correct_ = zero();
}

bool StageTrainer::preempted_before_first_step() {
  if (!comm_.any(preemption_requested()) || global_step_ >= hyper_.total_steps) return false;
  if (root_) {
    CTMQ_WARN("stage " << o_.stage << " preempted before its first step at step " << global_step_
                       << " of " << hyper_.total_steps << " (signal " << preemption_signal()
                       << "); nothing new to save, rerun the same command to continue");
  }
  result_.outcome = StageOutcome::kPreempted;
  result_.global_step = global_step_;
  return true;
}

// The batch of a global step is a function of the step alone (sampler and
// augmentation are seeded by (data seed, epoch, index)), so the loader's
// workers produce it ahead, bit-identical to producing it here.
data::Batch StageTrainer::produce_batch(int64_t batch_step) const {
  const int64_t epoch = batch_step / steps_per_epoch_;
  const std::vector<int64_t> indices = sampler_->indices(epoch, batch_step % steps_per_epoch_);
  return dataset_->get_training_batch(indices, epoch, augment_);
}

void StageTrainer::reconcile_replicas(const std::string& where) {
  if (comm_.size() == 1) return;
  if (bn_sync_ == BatchNormSync::kPerRank) dist::average_buffers(comm_, *net_);
  dist::check_replicas_agree(comm_, *net_, where);
}

void StageTrainer::save_checkpoint() {
  reconcile_replicas("the checkpoint at step " + std::to_string(global_step_) + " of stage " +
                     o_.stage);
  signal_at_test_point("checkpoint-write");
  if (root_) {
    CheckpointMeta meta;
    meta.stage = o_.stage;
    meta.bits = o_.bits;
    meta.set_network(model::describe_network(model_options_));
    meta.epoch = global_step_ / steps_per_epoch_;
    meta.step_in_epoch = global_step_ % steps_per_epoch_;
    meta.global_step = global_step_;
    meta.world_size = comm_.size();
    meta.config = o_.resolved_config;
    store_->save(meta, *net_, *optimizer_);
  }
  comm_.barrier();  // no rank runs ahead of a checkpoint it may need
}

// One metrics record, TensorBoard point and progress line for the steps since
// the last one (a collective: sums over ranks).
void StageTrainer::log_interval(int64_t epoch, int64_t step, double lr) {
  auto sums = dist::allreduce_sum_values(comm_, {loss_sum_.item<double>(), correct_.item<double>(),
                                                 seen_, interval_wait_s_, epoch_wait_s_});
  const double elapsed = seconds_since(interval_start_);
  StepMetrics m;
  m.stage = o_.stage;
  m.w_bits = o_.bits.weight;
  m.a_bits = o_.bits.activation;
  m.epoch = epoch;
  m.step = step + 1;
  m.global_step = global_step_;
  m.total_steps = hyper_.total_steps;
  m.loss = sums[0] / sums[2];
  m.accuracy = sums[1] / sums[2];
  m.lr = lr;
  m.images_per_s = elapsed > 0 ? sums[2] / elapsed : 0;
  m.elapsed_s = seconds_since(stage_start_);
  m.ranks = comm_.size();
  m.data_wait_s = sums[3] / comm_.size();
  m.epoch_data_wait_s = sums[4] / comm_.size();
  if (root_) {
    metrics_->append(m);
    if (tensorboard_) tensorboard_->append(m);
    progress_->report(global_step_, m.loss, m.accuracy, lr, m.images_per_s,
                      elapsed > 0 ? m.data_wait_s / elapsed : 0);
  }
  result_.last_loss = m.loss;
  result_.last_accuracy = m.accuracy;
  loss_sum_ = zero();
  correct_ = zero();
  seen_ = 0;
  interval_wait_s_ = 0;
  interval_start_ = std::chrono::steady_clock::now();
}

// [train] eval-every: the test set now (a collective), logged like a step.
void StageTrainer::evaluate_now() {
  if (comm_.size() > 1 && bn_sync_ == BatchNormSync::kPerRank) dist::average_buffers(comm_, *net_);
  EvalMetrics e = evaluation_->run(*net_, global_step_, steps_per_epoch_, comm_);
  // Evaluation time is not training time: images/s stays the step rate.
  interval_start_ += std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(e.eval_s));
  if (!root_) return;
  e.stage = o_.stage;
  e.w_bits = o_.bits.weight;
  e.a_bits = o_.bits.activation;
  e.elapsed_s = seconds_since(stage_start_);
  metrics_->append(e);
  if (tensorboard_) tensorboard_->append(e);
  progress_->finish();  // the log line below starts on a line of its own
  CTMQ_INFO("stage " << o_.stage << " epoch " << e.epoch + 1 << ": test top-1 " << e.top1
                     << " %, loss " << e.loss << " (" << e.samples << " images, "
                     << format_duration(e.eval_s) << ")");
}

bool StageTrainer::run_steps() {
  // Pinned host batches make the copy below an asynchronous DMA on CUDA.
  const bool pinned = device_.is_cuda() && loader_workers_ > 0;
  data::BatchLoader loader([this](int64_t step) { return produce_batch(step); },
                           {global_step_, hyper_.total_steps, loader_workers_, 0, pinned});
  int64_t wait_epoch = global_step_ / steps_per_epoch_;
  net_->train();
  while (global_step_ < hyper_.total_steps) {
    const int64_t epoch = global_step_ / steps_per_epoch_;
    const int64_t step = global_step_ % steps_per_epoch_;
    const double waited_before = loader.waited_s();
    data::Batch batch = loader.next();
    const double waited = loader.waited_s() - waited_before;
    if (epoch != wait_epoch) epoch_wait_s_ = 0;
    wait_epoch = epoch;
    interval_wait_s_ += waited;
    epoch_wait_s_ += waited;
    torch::Tensor images = batch.images.to(device_, /*non_blocking=*/pinned);
    torch::Tensor labels = batch.labels.to(device_, /*non_blocking=*/pinned);

    optimizer_->zero_grad();
    torch::Tensor logits = net_->forward(images);
    torch::Tensor loss = training_loss(logits, labels, teacher_.get(), images, o_.distill_weight);
    loss.backward();
    allreducer_->average_gradients();
    const double lr = schedule_->at(global_step_);
    set_learning_rate(*optimizer_, lr);
    optimizer_->step();
    ++global_step_;

    const double n = static_cast<double>(labels.size(0));
    loss_sum_ += loss.detach().to(torch::kFloat64) * n;
    correct_ += logits.argmax(1).eq(labels).sum();
    seen_ += n;
    if (o_.after_step) o_.after_step(global_step_);
    if (o_.after_step_replica) o_.after_step_replica(global_step_, *net_);

    if (global_step_ % o_.log_every == 0 || global_step_ == hyper_.total_steps)
      log_interval(epoch, step, lr);
    const bool stop = comm_.any(preemption_requested()) && global_step_ < hyper_.total_steps;
    if (stop || global_step_ == hyper_.total_steps ||
        (o_.checkpoint_every > 0 && global_step_ % o_.checkpoint_every == 0)) {
      save_checkpoint();
    }
    if (!stop && evaluation_ &&
        evaluation_->due(global_step_, steps_per_epoch_, hyper_.total_steps))
      evaluate_now();
    if (stop) {
      progress_->finish();
      if (root_) {
        CTMQ_WARN("stage " << o_.stage << " preempted at step " << global_step_ << " of "
                           << hyper_.total_steps << " (signal " << preemption_signal()
                           << "); checkpoint written, rerun the same command to continue");
      }
      result_.outcome = StageOutcome::kPreempted;
      result_.global_step = global_step_;
      return true;
    }
  }
  progress_->finish();
  return false;
}

void StageTrainer::finish() {
  // A signal from here on (the last checkpoint is written) lets the stage
  // finish: writing final.pt and DONE takes well under a second.
  signal_at_test_point("final-write");
  if (root_) {
    model::save_network(*net_, layout_.final_weights(o_.stage));
    nlohmann::json note = {{"stage", o_.stage},
                           {"w_bits", o_.bits.weight},
                           {"a_bits", o_.bits.activation},
                           {"global_step", global_step_},
                           {"ranks", comm_.size()},
                           {"last_loss", result_.last_loss},
                           {"last_accuracy", result_.last_accuracy}};
    layout_.mark_done(o_.stage, note.dump());
    CTMQ_INFO("stage " << o_.stage << " DONE after " << global_step_ << " steps ("
                       << format_duration(seconds_since(stage_start_)) << ")");
  }
  comm_.barrier();
  result_.outcome = StageOutcome::kCompleted;
  result_.global_step = global_step_;
}

}  // namespace

StageResult train_stage(const TrainOptions& options, dist::Communicator& comm) {
  StageTrainer stage(options, comm);
  if (!stage.prepare()) return stage.result();
  stage.open_logs();
  if (stage.preempted_before_first_step() || stage.run_steps()) return stage.result();
  stage.finish();
  return stage.result();
}

}  // namespace ctmq::train
