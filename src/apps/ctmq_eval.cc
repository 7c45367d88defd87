// ctmq-eval: evaluates a stage's final.pt on the test split and writes
// RUN/stages/STAGE/eval.json (and quant_report.json with --quant-report; and
// eval-network.pt, the evaluated network, for a stage whose BatchNorm
// statistics were re-estimated at its own bit depths). A thin main: flags ->
// train::EvalStageOptions -> train::evaluate_stage (train/evaluate_stage.h).
//
// Exit codes: 0 written, 75 preempted (SIGUSR1/SIGTERM; checked by every rank
// before BatchNorm re-estimation, before the evaluation and before the result
// is written; nothing is written, rerun to evaluate), anything else a failure.
#include <iomanip>
#include <iostream>

#include "apps/app_options.h"
#include "ctmq/common/error.h"
#include "ctmq/common/preemption.h"
#include "ctmq/dist/mpi_context.h"
#include "ctmq/train/evaluate_stage.h"

namespace {

namespace po = ctmq::apps::po;

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
  ctmq::train::EvalStageOptions o;
  po::options_description options("Evaluation");
  // clang-format off
  options.add_options()
    ("run-dir", po::value(&o.run_dir)->value_name("DIR")->required(), "the run directory")
    ("stage", po::value(&o.stage)->value_name("STAGE")->required(), "the stage to evaluate (must be DONE)");
  ctmq::apps::add_data_options(options, &o.train_manifest, &o.test_manifest, &o.train_limit, &o.test_limit);
  options.add_options()
    ("batch", ctmq::apps::bound(&o.batch)->value_name("N"),
     "[eval] global batch (sum over ranks, as [train] batch): each rank evaluates batch/ranks "
     "images per forward pass; BatchNorm re-estimation draws global batches of this size")
    ("bn-recalibrate-batches", ctmq::apps::bound(&o.bn_recalibrate_batches)->value_name("N"),
     "[eval] re-estimate BatchNorm statistics on N training batches first (0 = off)")
    ("quant-report", ctmq::apps::bound(&o.quant_report)->value_name("BOOL")->implicit_value(true, "true"),
     "[eval] also write quant_report.json")
    ("threads", ctmq::apps::bound(&o.threads)->value_name("N"),
     "threads per rank (0 = SLURM_CPUS_PER_TASK or the usable CPUs / ranks, never more than the "
     "affinity mask and cgroup quota allow)")
    ("device", ctmq::apps::enum_value(&o.device, ctmq::dist::kDeviceKindNames, "--device")->value_name("DEVICE"), "cpu | cuda (one GPU per local rank)")
    ("w-bits", ctmq::apps::bound(&o.weight_bits_override)->value_name("K"),
     "evaluate the stage's weights at other weight bits (1..8, 32; 0 = the stage's own), "
     "without training; writes eval-wKaK.json beside eval.json, never eval.json itself")
    ("a-bits", ctmq::apps::bound(&o.activation_bits_override)->value_name("K"),
     "the same for activation bits (0 = the stage's own)");
  // clang-format on
  po::variables_map vm;
  if (!ctmq::apps::parse_options(argc, argv, info, options, vm)) return 0;

  mpi = std::make_unique<ctmq::dist::MpiContext>(&argc, &argv);
  const ctmq::train::EvalStageResult result = ctmq::train::evaluate_stage(o, *mpi);
  if (result.outcome == ctmq::train::EvalStageOutcome::kPreempted)
    return static_cast<int>(ctmq::ExitCode::kPreempted);
  if (mpi->rank() == 0) {
    const ctmq::eval::EvalRecord& record = result.record;
    const bool own = record.bits == result.own_bits;
    std::cout << "ctmq-eval: stage " << o.stage << " (" << record.bits.tag()
              << (own ? "" : ", weights of " + result.own_bits.tag()) << "): top-1 " << std::fixed
              << std::setprecision(2) << record.result.top1 << " %";
    if (record.result.top5) std::cout << ", top-5 " << *record.result.top5 << " %";
    std::cout << ", loss " << std::setprecision(4) << record.result.loss << " on "
              << record.result.samples << " test samples"
              << (record.bn_recalibrated ? " (BN re-estimated)" : "") << ", " << record.ranks
              << " rank(s), " << std::setprecision(1) << record.elapsed_s << " s\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  ctmq::install_preemption_handlers();  // first: a signal held by the launcher arrives now
  std::unique_ptr<ctmq::dist::MpiContext> mpi;
  return ctmq::apps::run_mpi_main("ctmq-eval", mpi, [&] { return eval_main(argc, argv, mpi); },
                                  {static_cast<int>(ctmq::ExitCode::kPreempted)});
}
