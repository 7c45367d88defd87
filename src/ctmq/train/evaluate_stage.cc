#include "ctmq/train/evaluate_stage.h"

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "ctmq/common/atomic_file.h"
#include "ctmq/common/error.h"
#include "ctmq/common/log.h"
#include "ctmq/common/preemption.h"
#include "ctmq/common/run_layout.h"
#include "ctmq/dist/module_sync.h"
#include "ctmq/dist/shared_directory.h"
#include "ctmq/dist/thread_budget.h"
#include "ctmq/eval/evaluator.h"
#include "ctmq/eval/quant_report.h"
#include "ctmq/model/weights_io.h"
#include "ctmq/plan/plan_tsv.h"
#include "ctmq/train/tensorboard_log.h"

namespace ctmq::train {
namespace {

// The stage that initialised `stage`, from RUN/plan.tsv (nullopt when the
// plan is absent or the init is not a stage).
std::optional<std::string> init_stage_of(const RunLayout& run, const std::string& stage) {
  if (!std::filesystem::exists(run.plan())) return std::nullopt;
  auto plan = plan::parse_plan_tsv(read_file(run.plan()), run.plan());
  const plan::Stage* s = plan.find(stage);
  CTMQ_CHECK(s != nullptr,
             "stage " << stage << " is not in " << run.plan() << "; stages: " << plan.names());
  if (s->init == "none" || s->init.find(':') != std::string::npos) return std::nullopt;
  return s->init;
}

void write_quant_report(const RunLayout& run, const std::string& stage, model::NetworkImpl& net) {
  const std::optional<std::string> init_stage = init_stage_of(run, stage);
  std::shared_ptr<model::NetworkImpl> init;
  if (init_stage) init = model::load_network(run.final_weights(*init_stage));
  const eval::QuantReport report = eval::make_quant_report(net, stage, init.get(), init_stage);
  write_file_atomically(run.stage(stage) + "/quant_report.json", eval::quant_report_json(report));
}

// The stage's evaluation as the last point of its TensorBoard curves:
// eval/top1, eval/top5, eval/loss at the stage's final global step (its DONE
// note), in a new event file beside the training's, when ctmq-train wrote a
// TensorBoard directory for the stage ([train] tensorboard = true).
void add_to_tensorboard(const RunLayout& run, const std::string& stage,
                        const eval::EvalRecord& record) {
  if (!std::filesystem::is_directory(run.tensorboard(stage))) return;
  const auto note = nlohmann::json::parse(read_file(run.done_marker(stage)));
  EvalMetrics metrics;
  metrics.stage = stage;
  metrics.global_step = note.value("global_step", int64_t{0});
  metrics.samples = record.result.samples;
  metrics.top1 = record.result.top1;
  metrics.top5 = record.result.top5;
  metrics.loss = record.result.loss;
  TensorBoardLog(run.tensorboard(stage), /*fresh_start=*/false).append(metrics);
}

}  // namespace

EvalStageResult evaluate_stage(const EvalStageOptions& o, dist::Communicator& comm) {
  const auto start = std::chrono::steady_clock::now();
  const bool root = comm.rank() == 0;
  EvalStageResult result;
  CTMQ_CHECK(!o.test_manifest.empty(),
             "[data] test-manifest is required: the test shards' manifest.json (ctmq-shard)");
  CTMQ_CHECK(o.batch >= 1, "[eval] batch = " << o.batch << " must be at least 1");
  // Every rank reaches each call: the agreement is a collective.
  auto preempted = [&](const std::string& before) {
    if (!comm.any(preemption_requested())) return false;
    if (root)
      CTMQ_WARN("ctmq-eval: stage " << o.stage << " preempted (signal " << preemption_signal()
                                    << ") before " << before
                                    << "; nothing written, rerun the same command to evaluate");
    result.outcome = EvalStageOutcome::kPreempted;
    return true;
  };
  const torch::Device device = dist::rank_device(o.device, comm);
  const dist::ThreadBudget budget = dist::resolve_threads(o.threads, comm.local_size());
  torch::set_num_threads(budget.threads);
  if (root)
    CTMQ_INFO("ctmq-eval: " << budget.threads << " thread(s) per rank (" << budget.reason << ")");

  dist::check_shared_directory(comm, o.run_dir, "--run-dir");
  const RunLayout run(o.run_dir);
  CTMQ_CHECK(run.is_done(o.stage), "stage " << o.stage << " is not DONE in " << o.run_dir << " (no "
                                            << run.done_marker(o.stage)
                                            << "); train it first (ctmq-train or the runner)");
  const std::string weights_path = run.final_weights(o.stage);
  auto net = model::load_network(weights_path);
  result.own_bits = net->bit_depths();
  const quant::BitDepths& own = result.own_bits;
  const int weight_bits = o.weight_bits_override == 0 ? own.weight : o.weight_bits_override;
  const int activation_bits =
      o.activation_bits_override == 0 ? own.activation : o.activation_bits_override;
  CTMQ_CHECK(quant::is_valid_bits(weight_bits) && quant::is_valid_bits(activation_bits),
             "--w-bits/--a-bits " << o.weight_bits_override << "/" << o.activation_bits_override
                                  << " are not valid; use 1..8, 32, or 0 for the stage's own");
  const quant::BitDepths bits{weight_bits, activation_bits};
  const bool own_depths = bits == own;
  // A what-if evaluation at other depths never replaces the stage's eval.json.
  result.eval_path =
      own_depths ? run.eval(o.stage) : run.stage(o.stage) + "/eval-" + bits.tag() + ".json";
  net->set_bit_depths(bits);
  dist::broadcast_module_state(comm, *net);
  if (o.quant_report && own_depths && root) write_quant_report(run, o.stage, *net);

  auto normalise_as_trained = [&](data::ShardDataset& data) {
    if (!eval::normalise_as_trained(*net, data, "network file " + weights_path) && root)
      CTMQ_WARN("network file " << weights_path
                                << " predates recorded input normalisation (format < 3); "
                                   "normalising with the evaluated data's own statistics");
  };
  if (preempted("BatchNorm re-estimation")) return result;
  bool recalibrated = false;
  if (o.bn_recalibrate_batches > 0) {
    CTMQ_CHECK(!o.train_manifest.empty(), "[eval] bn-recalibrate-batches = "
                                              << o.bn_recalibrate_batches
                                              << " needs [data] train-manifest; set it or use 0");
    data::ShardDataset train(o.train_manifest);
    normalise_as_trained(train);
    eval::BatchNormRecalibration recal;
    recal.batches = o.bn_recalibrate_batches;
    recal.batch = o.batch;
    recal.limit = o.train_limit;
    recal.device = device;
    eval::recalibrate_batch_norm(*net, train, recal, comm);
    recalibrated = true;
  }

  data::ShardDataset test(o.test_manifest);
  normalise_as_trained(test);
  signal_at_test_point("evaluation");
  if (preempted("the evaluation")) return result;
  eval::EvalOptions eval_options;
  eval_options.batch_per_rank = (o.batch + comm.size() - 1) / comm.size();
  eval_options.limit = o.test_limit;
  eval_options.device = device;
  eval::EvalRecord& record = result.record;
  record.result = eval::evaluate(*net, test, eval_options, comm);
  record.stage = o.stage;
  record.bits = net->bit_depths();
  record.class_names = test.class_names();
  record.bn_recalibrated = recalibrated;
  record.ranks = comm.size();
  record.elapsed_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (preempted("writing " + result.eval_path)) return result;
  if (root) {
    // The network that was scored, when it is not final.pt: what ctmq-export
    // exports (packed W1A1 or a state-dict of any depth), so that the export
    // gives these predictions (docs/deploy.md). Written first: eval.json implies it.
    if (recalibrated && own_depths) {
      model::save_network(*net, run.eval_network(o.stage));
    } else if (own_depths) {
      std::filesystem::remove(run.eval_network(o.stage));  // from an earlier evaluation
    }
    write_file_atomically(result.eval_path, eval::eval_json(record));
    if (own_depths) add_to_tensorboard(run, o.stage, record);
  }
  comm.barrier();
  return result;
}

}  // namespace ctmq::train
