// ctmq-plan: prints the ordered stages of a chain (plan.tsv) from [plan];
// with --verify FILE checks an existing plan.tsv (checksum and form) instead.
// --set section.key=value overrides a value of --config (ctmq::plan::RunConfig);
// --resolve-config writes the resolved configuration, --same-config-as
// compares it with a run directory's. --get SECTION.KEY prints one value of
// --config and --stage-table FILE the stage facts of a plan.tsv: the shell
// runners read config and plan only through these (docs/run-directory.md).
#include <filesystem>
#include <iostream>
#include <map>
#include <vector>

#include "apps/app_options.h"
#include "ctmq/common/atomic_file.h"
#include "ctmq/common/error.h"
#include "ctmq/plan/plan_tsv.h"
#include "ctmq/plan/run_config.h"
#include "ctmq/plan/stage_plan.h"

namespace {

// The [plan] values among the --set overrides of argv, as the flags they
// stand for ("--cycles=2"), which win over the config file (app_options.h);
// of two overrides of one key the later wins. Every --set is checked here,
// before any other parsing.
std::vector<std::string> plan_flags_of_overrides(int argc, char** argv,
                                                 const ctmq::apps::po::options_description& plan) {
  std::map<std::string, std::string> values;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    std::string text;
    if (arg == "--set" && i + 1 < argc) {
      text = argv[++i];
    } else if (arg.rfind("--set=", 0) == 0) {
      text = arg.substr(6);
    } else {
      continue;
    }
    const ctmq::plan::ConfigOverride o = ctmq::plan::parse_override(text);
    if (o.section != "plan") continue;
    CTMQ_CHECK(plan.find_nothrow(o.key, false) != nullptr,
               "--set '" << text << "': [plan] has no key '" << o.key
                         << "'; see ctmq-plan --help for the [plan] keys");
    values[o.key] = o.value;
  }
  std::vector<std::string> flags;
  for (const auto& [key, value] : values) flags.push_back("--" + key + "=" + value);
  return flags;
}

}  // namespace

int main(int argc, char** argv) {
  return ctmq::apps::run_main("ctmq-plan", [&] {
    namespace po = ctmq::apps::po;
    const ctmq::apps::AppInfo info{
        "ctmq-plan",
        "print the ordered stages (plan.tsv) of a CTMQ chain; with --run-dir record them there",
        {"plan"},
        {"ctmq-plan --config run.ini", "ctmq-plan --config run.ini --run-dir runs/a",
         "ctmq-plan --config run.ini --set train.seed=2 --resolve-config runs/a/config.ini",
         "ctmq-plan --config run.ini --same-config-as runs/a/config.ini",
         "ctmq-plan --verify runs/a/plan.tsv",
         "ctmq-plan --config runs/a/config.ini --get data.train-manifest",
         "ctmq-plan --stage-table runs/a/plan.tsv"},
        {{0, "printed (or written, or verified, or the same configuration)"},
         {1, "an error, or (--same-config-as) another configuration: the first difference named"}}};
    ctmq::plan::PlanOptions d;  // defaults
    std::string schedule, accurate, a_bits, pretrained, run_dir, verify, resolve, same_as;
    std::string get, stage_table;
    std::vector<std::string> sets;
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
        "add the restart control: the target depth as stages with CTMQ's epochs and restarts");
    po::options_description modes("Run directory and configuration");
    modes.add_options()("run-dir", po::value(&run_dir)->value_name("DIR"),
                        "write RUN/plan.tsv (or check that the existing one is the same plan)")(
        "verify", po::value(&verify)->value_name("FILE"),
        "check FILE (a plan.tsv: checksum, version, rows) and exit 0, or 1 naming what is wrong")(
        "set", po::value(&sets)->value_name("SECTION.KEY=VALUE")->composing(),
        "override a value of --config (repeatable; any section: [plan] values change the plan)")(
        "resolve-config", po::value(&resolve)->value_name("FILE"),
        "write --config with every --set in canonical form to FILE (atomically; - = stdout), "
        "after checking the plan, and exit")(
        "same-config-as", po::value(&same_as)->value_name("FILE"),
        "exit 0 when FILE (e.g. RUN/config.ini) holds the same values as --config with every "
        "--set, else 1 naming the first difference; comments and key order do not count")(
        "get", po::value(&get)->value_name("SECTION.KEY"),
        "print the value of SECTION.KEY in --config with every --set (nothing, exit 0, when it "
        "is not set) and exit")(
        "stage-table", po::value(&stage_table)->value_name("FILE"),
        "check FILE as --verify does, then print one line per stage: name, w_bits, a_bits, "
        "epochs, init, role, cycle (tab-separated, no header)");
    po::options_description all;
    all.add(options).add(modes);
    std::vector<std::string> args(argv, argv + argc);
    for (const auto& flag : plan_flags_of_overrides(argc, argv, options)) args.push_back(flag);
    std::vector<char*> arg_pointers;
    for (auto& a : args) arg_pointers.push_back(a.data());
    po::variables_map vm;
    if (!ctmq::apps::parse_options(static_cast<int>(arg_pointers.size()), arg_pointers.data(), info,
                                   all, vm)) {
      return 0;
    }
    if (!verify.empty()) {
      ctmq::plan::parse_plan_tsv(ctmq::read_file(verify), verify);
      return 0;
    }
    if (!stage_table.empty()) {
      std::cout << ctmq::plan::format_stage_table(
          ctmq::plan::parse_plan_tsv(ctmq::read_file(stage_table), stage_table));
      return 0;
    }
    if (!get.empty()) {
      CTMQ_CHECK(vm.count("config"), "ctmq-plan: --get needs --config");
      const size_t dot = get.find('.');
      CTMQ_CHECK(dot != std::string::npos && dot > 0 && dot + 1 < get.size(),
                 "--get '" << get << "': expected SECTION.KEY, e.g. --get data.train-manifest");
      const std::string path = vm["config"].as<std::string>();
      ctmq::plan::RunConfig config = ctmq::plan::parse_run_config(ctmq::read_file(path), path);
      std::vector<ctmq::plan::ConfigOverride> overrides;
      for (const auto& text : sets) overrides.push_back(ctmq::plan::parse_override(text));
      ctmq::plan::apply_overrides(config, overrides);
      const auto value = ctmq::plan::config_value(config, get.substr(0, dot), get.substr(dot + 1));
      if (value) std::cout << *value << "\n";
      return 0;
    }
    o.schedule = ctmq::plan::parse_schedule(schedule);
    o.accurate = ctmq::plan::parse_accurate_model(accurate);
    o.a_bits = ctmq::plan::parse_activation_bits(a_bits);
    o.pretrained = pretrained;
    const ctmq::plan::StagePlan plan = ctmq::plan::make_plan(o);
    if (!resolve.empty() || !same_as.empty()) {
      CTMQ_CHECK(vm.count("config"),
                 "ctmq-plan: --resolve-config and --same-config-as need --config");
      const std::string path = vm["config"].as<std::string>();
      ctmq::plan::RunConfig config = ctmq::plan::parse_run_config(ctmq::read_file(path), path);
      std::vector<ctmq::plan::ConfigOverride> overrides;
      for (const auto& text : sets) overrides.push_back(ctmq::plan::parse_override(text));
      ctmq::plan::apply_overrides(config, overrides);
      if (!same_as.empty()) {
        const std::string name = sets.empty() ? path : path + " with --set";
        const std::string difference = ctmq::plan::first_difference(
            config, ctmq::plan::parse_run_config(ctmq::read_file(same_as), same_as), name, same_as);
        CTMQ_CHECK(difference.empty(),
                   same_as << " holds another configuration than " << name << ": " << difference);
      }
      if (!resolve.empty()) {
        const std::string text = ctmq::plan::format_run_config(
            config, std::filesystem::absolute(path).lexically_normal().string(), sets);
        if (resolve == "-") {
          std::cout << text;
        } else {
          ctmq::write_file_atomically(resolve, text);
        }
      }
      return 0;
    }
    if (!run_dir.empty()) ctmq::plan::write_or_check_plan(run_dir, plan);
    std::cout << ctmq::plan::format_plan_tsv(plan);
    return 0;
  });
}
