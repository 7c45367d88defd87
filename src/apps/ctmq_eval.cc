// ctmq-eval: evaluates a stage's final.pt on the test split and writes
// RUN/stages/STAGE/eval.json (and quant_report.json with --quant-report; and
// eval-network.pt, the evaluated network, for a stage whose BatchNorm
// statistics were re-estimated at its own bit depths).
//
// Exit codes: 0 written, 75 preempted (SIGUSR1/SIGTERM; checked by every rank
// before BatchNorm re-estimation, before the evaluation and before the result
// is written; nothing is written, rerun to evaluate), anything else a failure.
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>

#include "apps/app_options.h"
#include "ctmq/common/atomic_file.h"
#include "ctmq/common/error.h"
#include "ctmq/common/log.h"
#include "ctmq/common/preemption.h"
#include "ctmq/common/run_layout.h"
#include "ctmq/dist/module_sync.h"
#include "ctmq/dist/mpi_context.h"
#include "ctmq/dist/thread_budget.h"
#include "ctmq/eval/eval_json.h"
#include "ctmq/eval/evaluator.h"
#include "ctmq/eval/quant_report.h"
#include "ctmq/model/weights_io.h"
#include "ctmq/plan/plan_tsv.h"
#include "ctmq/train/tensorboard_log.h"

namespace {

namespace po = ctmq::apps::po;

// The stage that initialised `stage`, from RUN/plan.tsv (nullopt when the
// plan is absent or the init is not a stage).
std::optional<std::string> init_stage_of(const ctmq::RunLayout& run, const std::string& stage) {
  if (!std::filesystem::exists(run.plan())) return std::nullopt;
  auto plan = ctmq::plan::parse_plan_tsv(ctmq::read_file(run.plan()), run.plan());
  const ctmq::plan::Stage* s = plan.find(stage);
  CTMQ_CHECK(s != nullptr,
             "stage " << stage << " is not in " << run.plan() << "; stages: " << plan.names());
  if (s->init == "none" || s->init.find(':') != std::string::npos) return std::nullopt;
  return s->init;
}

// The stage's evaluation as the last point of its TensorBoard curves:
// eval/top1, eval/top5, eval/loss at the stage's final global step (its DONE
// note), in a new event file beside the training's, when ctmq-train wrote a
// TensorBoard directory for the stage ([train] tensorboard = true).
void add_to_tensorboard(const ctmq::RunLayout& run, const std::string& stage,
                        const ctmq::eval::EvalRecord& record) {
  if (!std::filesystem::is_directory(run.tensorboard(stage))) return;
  const auto note = nlohmann::json::parse(ctmq::read_file(run.done_marker(stage)));
  ctmq::train::EvalMetrics metrics;
  metrics.stage = stage;
  metrics.global_step = note.value("global_step", int64_t{0});
  metrics.samples = record.result.samples;
  metrics.top1 = record.result.top1;
  metrics.top5 = record.result.top5;
  metrics.loss = record.result.loss;
  ctmq::train::TensorBoardLog(run.tensorboard(stage), /*fresh_start=*/false).append(metrics);
}

int eval_main(int argc, char** argv, std::unique_ptr<ctmq::dist::MpiContext>& mpi) {
  const ctmq::apps::AppInfo info{
      "ctmq-eval",
      "evaluate RUN/stages/STAGE/final.pt on the test split; write eval.json (and "
      "quant_report.json)",
      {"data", "eval"},
      {"ctmq-eval --config run.ini --run-dir runs/a --stage c1-w1a1",
       "ctmq-eval --config run.ini --run-dir runs/a --stage c1-w4a4 --w-bits 2 --a-bits 2",
       "ctmq-eval --config run.ini --run-dir runs/a --stage c1-w1a1 --bn-recalibrate-batches 20 "
       "--quant-report"},
      {{0, "written: eval.json (eval-wKaK.json with other --w-bits/--a-bits)"},
       {75, "preempted by SIGUSR1/SIGTERM; nothing written; rerun to evaluate"}}};
  std::string run_dir, stage, train_manifest, test_manifest, device;
  int64_t train_limit = 0, test_limit = 0, batch = 256, bn_batches = 0;
  int threads = 0, w_bits = 0, a_bits = 0;
  bool quant_report = false;
  po::options_description options("Evaluation");
  options.add_options()("run-dir", po::value(&run_dir)->value_name("DIR")->required(),
                        "the run directory")("stage",
                                             po::value(&stage)->value_name("STAGE")->required(),
                                             "the stage to evaluate (must be DONE)")(
      "train-manifest", po::value(&train_manifest)->value_name("FILE"),
      "[data] training manifest.json (for BatchNorm re-estimation)")(
      "test-manifest", po::value(&test_manifest)->value_name("FILE")->required(),
      "[data] test manifest.json")("train-limit",
                                   po::value(&train_limit)->value_name("N")->default_value(0),
                                   "[data] use the first N training samples (0 = all)")(
      "test-limit", po::value(&test_limit)->value_name("N")->default_value(0),
      "[data] evaluate the first N test samples (0 = all)")(
      "batch", po::value(&batch)->value_name("N")->default_value(256),
      "[eval] samples per forward pass per rank")(
      "bn-recalibrate-batches", po::value(&bn_batches)->value_name("N")->default_value(0),
      "[eval] re-estimate BatchNorm statistics on N training batches first (0 = off)")(
      "quant-report",
      po::value(&quant_report)
          ->value_name("BOOL")
          ->default_value(false, "false")
          ->implicit_value(true, "true"),
      "[eval] also write quant_report.json")(
      "threads", po::value(&threads)->value_name("N")->default_value(0),
      "threads per rank (0 = SLURM_CPUS_PER_TASK or the usable CPUs / ranks, never more than the "
      "affinity mask and cgroup quota allow)")(
      "device", po::value(&device)->value_name("DEVICE")->default_value("cpu"), "cpu | cuda")(
      "w-bits", po::value(&w_bits)->value_name("K")->default_value(0),
      "evaluate the stage's weights at other weight bits (1..8, 32; 0 = the stage's own), "
      "without training; writes eval-wKaK.json beside eval.json, never eval.json itself")(
      "a-bits", po::value(&a_bits)->value_name("K")->default_value(0),
      "the same for activation bits (0 = the stage's own)");
  po::variables_map vm;
  if (!ctmq::apps::parse_options(argc, argv, info, options, vm)) return 0;

  mpi = std::make_unique<ctmq::dist::MpiContext>(&argc, &argv);
  ctmq::dist::MpiContext& comm = *mpi;
  const auto start = std::chrono::steady_clock::now();
  // Every rank reaches each call: the agreement is a collective.
  auto preempted = [&comm, &stage](const std::string& before) {
    if (!comm.any(ctmq::preemption_requested())) return false;
    if (comm.rank() == 0)
      CTMQ_WARN("ctmq-eval: stage " << stage << " preempted (signal " << ctmq::preemption_signal()
                                    << ") before " << before
                                    << "; nothing written, rerun the same command to evaluate");
    return true;
  };
  const int kPreempted = static_cast<int>(ctmq::ExitCode::kPreempted);
  CTMQ_CHECK(device == "cpu" || device == "cuda",
             "--device " << device << " is not valid; expected cpu or cuda");
  CTMQ_CHECK(device == "cpu" || torch::cuda::is_available(),
             "--device cuda but CUDA is not available to this LibTorch; use --device cpu");
  torch::Device torch_device =
      device == "cpu"
          ? torch::Device(torch::kCPU)
          : torch::Device(torch::kCUDA, comm.local_rank() % torch::cuda::device_count());
  const ctmq::dist::ThreadBudget budget =
      ctmq::dist::resolve_threads(threads, ctmq::dist::ranks_per_node(comm));
  torch::set_num_threads(budget.threads);
  if (comm.rank() == 0)
    CTMQ_INFO("ctmq-eval: " << budget.threads << " thread(s) per rank (" << budget.reason << ")");

  const ctmq::RunLayout run(run_dir);
  CTMQ_CHECK(run.is_done(stage), "stage " << stage << " is not DONE in " << run_dir << " (no "
                                          << run.done_marker(stage)
                                          << "); train it first (ctmq-train or the runner)");
  auto net = ctmq::model::load_network(run.final_weights(stage));
  const ctmq::quant::BitDepths own = net->bit_depths();
  const ctmq::quant::BitDepths bits{w_bits == 0 ? own.weight : w_bits,
                                    a_bits == 0 ? own.activation : a_bits};
  CTMQ_CHECK(ctmq::quant::is_valid_bits(bits.weight) && ctmq::quant::is_valid_bits(bits.activation),
             "--w-bits/--a-bits " << w_bits << "/" << a_bits
                                  << " are not valid; use 1..8, 32, or 0 for the stage's own");
  // A what-if evaluation at other depths never replaces the stage's eval.json.
  const std::string eval_path =
      bits == own ? run.eval(stage) : run.stage(stage) + "/eval-" + bits.tag() + ".json";
  net->set_bit_depths(bits);
  ctmq::dist::broadcast_module_state(comm, *net);

  std::optional<std::string> init_stage;
  if (quant_report && bits == own && comm.rank() == 0) {
    init_stage = init_stage_of(run, stage);
    std::shared_ptr<ctmq::model::NetworkImpl> init;
    if (init_stage) init = ctmq::model::load_network(run.final_weights(*init_stage));
    auto report = ctmq::eval::make_quant_report(*net, stage, init.get(), init_stage);
    ctmq::write_file_atomically(run.stage(stage) + "/quant_report.json",
                                ctmq::eval::quant_report_json(report));
  }

  const std::string weights_path = run.final_weights(stage);
  auto normalise_as_trained = [&](ctmq::data::ShardDataset& data) {
    if (!ctmq::eval::normalise_as_trained(*net, data, "network file " + weights_path) &&
        comm.rank() == 0)
      CTMQ_WARN("network file " << weights_path
                                << " predates recorded input normalisation (format < 3); "
                                   "normalising with the evaluated data's own statistics");
  };
  bool recalibrated = false;
  if (preempted("BatchNorm re-estimation")) return kPreempted;
  if (bn_batches > 0) {
    CTMQ_CHECK(!train_manifest.empty(), "[eval] bn-recalibrate-batches = "
                                            << bn_batches
                                            << " needs [data] train-manifest; set it or use 0");
    ctmq::data::ShardDataset train(train_manifest);
    normalise_as_trained(train);
    ctmq::eval::BatchNormRecalibration recal;
    recal.batches = bn_batches;
    recal.batch = batch * comm.size();
    recal.limit = train_limit;
    recal.device = torch_device;
    ctmq::eval::recalibrate_batch_norm(*net, train, recal, comm);
    recalibrated = true;
  }

  ctmq::data::ShardDataset test(test_manifest);
  normalise_as_trained(test);
  ctmq::signal_at_test_point("evaluation");
  if (preempted("the evaluation")) return kPreempted;
  ctmq::eval::EvalOptions eval_options;
  eval_options.batch = batch;
  eval_options.limit = test_limit;
  eval_options.device = torch_device;
  ctmq::eval::EvalRecord record;
  record.result = ctmq::eval::evaluate(*net, test, eval_options, comm);
  record.stage = stage;
  record.bits = net->bit_depths();
  record.class_names = test.class_names();
  record.bn_recalibrated = recalibrated;
  record.ranks = comm.size();
  record.elapsed_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (preempted("writing " + eval_path)) return kPreempted;
  if (comm.rank() == 0) {
    // The network that was scored, when it is not final.pt: what ctmq-export
    // exports (packed W1A1 or a state-dict of any depth), so that the export
    // gives these predictions (docs/deploy.md). Written first: eval.json implies it.
    if (recalibrated && bits == own) {
      ctmq::model::save_network(*net, run.eval_network(stage));
    } else if (bits == own) {
      std::filesystem::remove(run.eval_network(stage));  // from an earlier evaluation
    }
    ctmq::write_file_atomically(eval_path, ctmq::eval::eval_json(record));
    if (bits == own) add_to_tensorboard(run, stage, record);
    std::cout << "ctmq-eval: stage " << stage << " (" << record.bits.tag()
              << (bits == own ? "" : ", weights of " + own.tag()) << "): top-1 " << std::fixed
              << std::setprecision(2) << record.result.top1 << " %";
    if (record.result.top5) std::cout << ", top-5 " << *record.result.top5 << " %";
    std::cout << ", loss " << std::setprecision(4) << record.result.loss << " on "
              << record.result.samples << " test samples"
              << (recalibrated ? " (BN re-estimated)" : "") << ", " << comm.size() << " rank(s), "
              << std::setprecision(1) << record.elapsed_s << " s\n";
  }
  comm.barrier();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  ctmq::install_preemption_handlers();  // first: a signal held by the launcher arrives now
  std::unique_ptr<ctmq::dist::MpiContext> mpi;
  return ctmq::apps::run_mpi_main("ctmq-eval", mpi, [&] { return eval_main(argc, argv, mpi); },
                                  {static_cast<int>(ctmq::ExitCode::kPreempted)});
}
