// ctmq-status: the state of every stage of a run directory (a table, or TSV),
// with Slurm's view of the jobs recorded in RUN/slurm-jobs.tsv; with
// --stages-to-train, the stages a runner would train (one rule for
// pipeline/run-chain.sh and slurm/submit.sh: plan/train_selection.h).
#include <filesystem>
#include <iostream>
#include <set>
#include <string>
#include <vector>

#include "apps/app_options.h"
#include "ctmq/common/atomic_file.h"
#include "ctmq/common/error.h"
#include "ctmq/common/run_layout.h"
#include "ctmq/plan/plan_tsv.h"
#include "ctmq/plan/train_selection.h"
#include "ctmq/status/run_status.h"
#include "ctmq/status/slurm_jobs.h"
#include "ctmq/status/status_table.h"

int main(int argc, char** argv) {
  return ctmq::apps::run_main("ctmq-status", [&] {
    namespace po = ctmq::apps::po;
    const ctmq::apps::AppInfo info{
        "ctmq-status",
        "show the state of every stage of a run directory (RUN may also come first: "
        "ctmq-status RUN)",
        {"status"},
        {"ctmq-status runs/a", "ctmq-status runs/a --format tsv",
         "ctmq-status runs/a --from c2-fp --stages-to-train"},
        {{1,
          "an error, named on stderr: no plan, a damaged file, an unknown --from stage, or "
          "(--stages-to-train) a stage to train whose init stage is not DONE and not to be "
          "trained"}}};
    // "ctmq-status RUN ...": the run directory may come first, without its flag.
    std::vector<char*> args(argv, argv + argc);
    std::string run_flag = "--run-dir";
    if (argc > 1 && argv[1][0] != '-') args.insert(args.begin() + 1, run_flag.data());
    std::string run_dir, plan_file, from, format;
    bool to_train = false;
    po::options_description options("Status ([status] section)");
    options.add_options()("run-dir", po::value(&run_dir)->value_name("DIR")->required(),
                          "the run directory (required)")(
        "plan", po::value(&plan_file)->value_name("FILE"),
        "the plan.tsv to read (default RUN/plan.tsv; the runners pass ctmq-plan's output "
        "before RUN exists)")("from", po::value(&from)->value_name("STAGE"),
                              "with --stages-to-train: retrain STAGE and every later stage")(
        "format", po::value(&format)->value_name("KIND")->default_value("table"),
        "table (aligned, for people) | tsv (for scripts)")(
        "stages-to-train", po::bool_switch(&to_train),
        "print the stages a runner trains, one per line, instead of the table (without "
        "--from: those not DONE); exit 1 naming the stage when the selection is refused");
    po::variables_map vm;
    if (!ctmq::apps::parse_options(static_cast<int>(args.size()), args.data(), info, options, vm))
      return 0;
    CTMQ_CHECK(format == "table" || format == "tsv",
               "--format " << format << ": expected table or tsv");
    CTMQ_CHECK(from.empty() || to_train, "--from needs --stages-to-train");
    const ctmq::RunLayout run(run_dir);
    if (plan_file.empty()) plan_file = run.plan();
    CTMQ_CHECK(std::filesystem::exists(plan_file),
               plan_file << " does not exist: " << run_dir
                         << " is not a run directory yet (run pipeline/run-chain.sh or "
                            "slurm/submit.sh), or pass --plan FILE");
    const ctmq::plan::StagePlan plan =
        ctmq::plan::parse_plan_tsv(ctmq::read_file(plan_file), plan_file);
    if (to_train) {
      for (const ctmq::plan::Stage* s : ctmq::plan::stages_to_train(plan, run, from))
        std::cout << s->name << "\n";
      return 0;
    }
    std::vector<ctmq::status::StageStatus> statuses = ctmq::status::read_run_status(run, plan);
    std::vector<std::string> notes;
    const std::string jobs_file = run.root() + "/slurm-jobs.tsv";
    if (std::filesystem::exists(jobs_file)) {
      const auto jobs = ctmq::status::parse_slurm_jobs(ctmq::read_file(jobs_file), jobs_file);
      std::set<std::string> ids;
      for (const auto& [key, id] : jobs) ids.insert(id);
      for (const auto& s : statuses)
        if (!s.lock_job.empty()) ids.insert(s.lock_job);
      const ctmq::status::SlurmView view =
          ctmq::status::query_slurm(std::vector<std::string>(ids.begin(), ids.end()));
      ctmq::status::apply_slurm(statuses, jobs, view);
      notes = view.notes;
    }
    std::cout << (format == "tsv" ? ctmq::status::format_status_tsv(statuses)
                                  : ctmq::status::format_status_table(statuses, notes));
    for (const std::string& note : notes)
      if (format == "tsv") std::cerr << "ctmq-status: note: " << note << "\n";
    return 0;
  });
}
