// ctmq-plan: prints the ordered stages of a chain (plan.tsv) from [plan];
// with --verify FILE checks an existing plan.tsv (checksum and form) instead.
#include <iostream>

#include "apps/app_options.h"
#include "ctmq/common/atomic_file.h"
#include "ctmq/plan/plan_tsv.h"
#include "ctmq/plan/stage_plan.h"

int main(int argc, char** argv) {
  return ctmq::apps::run_main("ctmq-plan", [&] {
    namespace po = ctmq::apps::po;
    const ctmq::apps::AppInfo info{
        "ctmq-plan",
        "print the ordered stages (plan.tsv) of a CTMQ chain; with --run-dir record them there",
        {"plan"},
        {"ctmq-plan --config run.ini", "ctmq-plan --config run.ini --run-dir runs/a",
         "ctmq-plan --verify runs/a/plan.tsv"},
        {{0, "printed (or written, or verified)"}}};
    ctmq::plan::PlanOptions d;  // defaults
    std::string schedule, accurate, a_bits, pretrained, run_dir, verify;
    ctmq::plan::PlanOptions o;
    po::options_description options("Plan ([plan] section)");
    options.add_options()(
        "schedule", po::value(&schedule)->value_name("NAME")->default_value("a"),
        "a: full staircase every cycle; b: one staircase, then accurate <-> k-target")(
        "k-start", po::value(&o.k_start)->value_name("K")->default_value(d.k_start),
        "first step's bits (1..8)")(
        "k-target", po::value(&o.k_target)->value_name("K")->default_value(d.k_target),
        "last step's bits")("step", po::value(&o.step)->value_name("K")->default_value(d.step),
                            "bits removed per step")(
        "cycles", po::value(&o.cycles)->value_name("C")->default_value(d.cycles),
        "number of cycles C")("accurate",
                              po::value(&accurate)->value_name("KIND")->default_value("fp"),
                              "accurate model of cycles 2..C: fp | k-start | k-plus-one")(
        "a-bits", po::value(&a_bits)->value_name("K")->default_value("same"),
        "activation bits of quantized stages: same (W_kA_k) or N")(
        "epochs-pretrain",
        po::value(&o.epochs_pretrain)->value_name("N")->default_value(d.epochs_pretrain),
        "epochs of c0-fp")(
        "epochs-accurate",
        po::value(&o.epochs_accurate)->value_name("N")->default_value(d.epochs_accurate),
        "epochs of each accurate stage")(
        "epochs-step", po::value(&o.epochs_step)->value_name("N")->default_value(d.epochs_step),
        "epochs of each quantization step")(
        "epochs-result",
        po::value(&o.epochs_result)->value_name("N")->default_value(d.epochs_result),
        "epochs of the last cycle's result step (0 = epochs-step)")(
        "pretrained", po::value(&pretrained)->value_name("SOURCE")->default_value("none"),
        "init of c0-fp: none | torchvision:PATH | weights:PATH")(
        "baselines",
        po::value(&o.baselines)
            ->value_name("BOOL")
            ->default_value(d.baselines, d.baselines ? "true" : "false"),
        "add the direct and one-step baselines (true|false)")(
        "restart-control",
        po::value(&o.restart_control)
            ->value_name("BOOL")
            ->default_value(d.restart_control, d.restart_control ? "true" : "false"),
        "add the restart control: the target depth as stages with CTMQ's epochs and restarts")(
        "run-dir", po::value(&run_dir)->value_name("DIR"),
        "write RUN/plan.tsv (or check that the existing one is the same plan)")(
        "verify", po::value(&verify)->value_name("FILE"),
        "check FILE (a plan.tsv: checksum, version, rows) and exit 0, or 1 naming what is wrong");
    po::variables_map vm;
    if (!ctmq::apps::parse_options(argc, argv, info, options, vm)) return 0;
    if (!verify.empty()) {
      ctmq::plan::parse_plan_tsv(ctmq::read_file(verify), verify);
      return 0;
    }
    o.schedule = ctmq::plan::parse_schedule(schedule);
    o.accurate = ctmq::plan::parse_accurate_model(accurate);
    o.a_bits = ctmq::plan::parse_activation_bits(a_bits);
    o.pretrained = pretrained;
    const ctmq::plan::StagePlan plan = ctmq::plan::make_plan(o);
    if (!run_dir.empty()) ctmq::plan::write_or_check_plan(run_dir, plan);
    std::cout << ctmq::plan::format_plan_tsv(plan);
    return 0;
  });
}
