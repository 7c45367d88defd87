// Fuzzes the INI config parser of the executables (apps/app_options.cc,
// parse_options with --config) as ctmq-plan uses it: the [plan] section
// through to the plan it prints. The options are ctmq-plan's, less --run-dir
// (which would write files wherever the input says).
#include <string>

#include "apps/app_options.h"
#include "ctmq/plan/plan_options.h"
#include "ctmq/plan/plan_tsv.h"
#include "ctmq/plan/stage_plan.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = ctmq::fuzz::scratch().write("run.ini", data, size);
  ctmq::fuzz::expect_errors_only([&] {
    namespace po = ctmq::apps::po;
    const ctmq::apps::AppInfo info{"ctmq-plan", "fuzz", {"plan"}};
    ctmq::plan::PlanOptions d;
    ctmq::plan::PlanOptions o;
    std::string schedule, accurate, a_bits, pretrained;
    po::options_description options("Plan ([plan] section)");
    options.add_options()("schedule", po::value(&schedule)->default_value("a"), "")(
        "k-start", po::value(&o.k_start)->default_value(d.k_start), "")(
        "k-target", po::value(&o.k_target)->default_value(d.k_target), "")(
        "step", po::value(&o.step)->default_value(d.step), "")(
        "cycles", po::value(&o.cycles)->default_value(d.cycles), "")(
        "accurate", po::value(&accurate)->default_value("fp"), "")(
        "a-bits", po::value(&a_bits)->default_value("same"), "")(
        "epochs-pretrain", po::value(&o.epochs_pretrain)->default_value(d.epochs_pretrain), "")(
        "epochs-accurate", po::value(&o.epochs_accurate)->default_value(d.epochs_accurate), "")(
        "epochs-step", po::value(&o.epochs_step)->default_value(d.epochs_step), "")(
        "epochs-result", po::value(&o.epochs_result)->default_value(d.epochs_result), "")(
        "pretrained", po::value(&pretrained)->default_value("none"), "")(
        "baselines", po::value(&o.baselines)->default_value(d.baselines), "")(
        "restart-control", po::value(&o.restart_control)->default_value(d.restart_control), "");
    std::string program = "ctmq-plan", flag = "--config", file = path;
    char* argv[] = {program.data(), flag.data(), file.data(), nullptr};
    po::variables_map vm;
    if (!ctmq::apps::parse_options(3, argv, info, options, vm)) return;
    o.schedule = ctmq::plan::parse_schedule(schedule);
    o.accurate = ctmq::plan::parse_accurate_model(accurate);
    o.a_bits = ctmq::plan::parse_activation_bits(a_bits);
    o.pretrained = pretrained;
    const ctmq::plan::StagePlan plan = ctmq::plan::make_plan(o);
    (void)ctmq::plan::format_plan_tsv(plan);
  });
  return 0;
}
