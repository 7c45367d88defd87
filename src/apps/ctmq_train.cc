// ctmq-train: trains one stage of the chain (docs/training.md). A thin main:
// flags -> TrainOptions -> ctmq::train::train_stage on an MpiContext.
//
// Exit codes: 0 stage complete (or already DONE), 75 preempted (SIGUSR1 or
// SIGTERM at any moment; checkpoint written if a step ran; rerun to continue), anything else a
// failure. With more than one rank, a failing rank aborts the whole job (MPI_Abort) so no rank
// waits forever.
#include <filesystem>
#include <iostream>
#include <memory>

#include "apps/app_options.h"
#include "ctmq/common/atomic_file.h"
#include "ctmq/common/error.h"
#include "ctmq/common/log.h"
#include "ctmq/common/preemption.h"
#include "ctmq/common/run_layout.h"
#include "ctmq/dist/mpi_context.h"
#include "ctmq/plan/plan_tsv.h"
#include "ctmq/quant/quant_options.h"
#include "ctmq/train/trainer.h"

namespace {

using namespace ctmq;
namespace po = apps::po;

const apps::AppInfo kInfo{
    "ctmq-train",
    "train one stage (bit depths, init source) of a CTMQ run; MPI data-parallel, resumable",
    {"model", "train", "data"},
    {"ctmq-train --config run.ini --run-dir runs/a --stage c0-fp --epochs 10",
     "ctmq-train --config run.ini --run-dir runs/a --stage c1-w4a4 --w-bits 4 --a-bits 4 --init "
     "c0-fp",
     "mpirun -n 4 ctmq-train --config run.ini --run-dir runs/a --stage c1-w1a1 --w-bits 1 "
     "--a-bits 1 --init c0-fp"},
    {{0, "stage complete (or already DONE)"},
     {75,
      "preempted by SIGUSR1/SIGTERM; checkpoint written if a step ran; rerun the same "
      "command to continue (docs/slurm.md)"}}};

void add_options(po::options_description& options) {
  // clang-format off
  options.add_options()
    ("run-dir", po::value<std::string>()->value_name("DIR"), "run directory (required)")
    ("stage", po::value<std::string>()->value_name("STAGE"), "stage name, e.g. c1-w4a4 (required)")
    ("w-bits", po::value<int>()->value_name("K")->default_value(32), "weight bits: 1..8, 32 = full precision")
    ("a-bits", po::value<int>()->value_name("K")->default_value(32), "activation bits: 1..8, 32 = full precision")
    ("epochs", po::value<int64_t>()->value_name("N")->default_value(1), "epochs of this stage")
    ("init", po::value<std::string>()->value_name("SOURCE")->default_value("none"),
     "none | STAGE (its final.pt; must be DONE) | torchvision:PATH | weights:PATH")
    ("distill-from", po::value<std::string>()->value_name("STAGE")->default_value("none"),
     "none | STAGE: a DONE stage of this run that supervises this one (overrides --distill)")
    // [data]
    ("train-manifest", po::value<std::string>()->value_name("FILE"), "[data] manifest.json of the training shards")
    ("test-manifest", po::value<std::string>()->value_name("FILE"), "[data] manifest.json of the test shards (ctmq-eval; here for eval-every)")
    ("train-limit", po::value<int64_t>()->value_name("N")->default_value(0), "[data] use the first N training samples; 0 = all")
    ("test-limit", po::value<int64_t>()->value_name("N")->default_value(0), "[data] evaluate the first N test samples (ctmq-eval; here for eval-every); 0 = all")
    // [model]
    ("arch", po::value<std::string>()->value_name("NAME")->default_value("small-resnet"), "[model] small-resnet | resnet20 | resnet18")
    ("width", po::value<int64_t>()->value_name("N")->default_value(16), "[model] channels of the first stage")
    ("block", po::value<std::string>()->value_name("KIND")->default_value("bi-real"),
     "[model] bi-real (one graph for every stage; hardtanh at full precision) | torchvision (ReLU block at full precision, for imported torchvision weights)")
    ("weight-quantizer", po::value<std::string>()->value_name("KIND")->default_value("dorefa"), "[model] dorefa | lsq")
    ("activation-quantizer", po::value<std::string>()->value_name("KIND")->default_value("signed"), "[model] signed | unsigned | lsq | pact (signed with a learned range)")
    ("weight-granularity", po::value<std::string>()->value_name("KIND")->default_value("per-tensor"), "[model] per-tensor | per-channel")
    ("edge-layer-bits", po::value<int>()->value_name("K")->default_value(32), "[model] first conv, last linear, 1x1 shortcuts: 32 | 8")
    ("pretrained-classifier", po::value<std::string>()->value_name("MODE")->default_value("use"),
     "[model] with --init torchvision:PATH: use (the file's fc; its class count must be the data set's) | reinit (fc initialised afresh, to fine-tune onto another class count)")
    // [train]
    ("batch", po::value<int64_t>()->value_name("N")->default_value(256), "[train] global batch (sum over ranks)")
    ("optimizer", po::value<std::string>()->value_name("NAME")->default_value("auto"), "[train] auto | sgd | adam (auto: Adam at 1-bit weights)")
    ("lr", po::value<double>()->value_name("X")->default_value(0.0, "0"), "[train] learning rate; 0 = method default scaled by batch/256")
    ("weight-decay", po::value<double>()->value_name("X")->default_value(-1.0, "-1"), "[train] -1 = method default")
    ("momentum", po::value<double>()->value_name("X")->default_value(0.9, "0.9"), "[train] SGD momentum")
    ("warmup-epochs", po::value<double>()->value_name("X")->default_value(-1.0, "-1"), "[train] linear warm-up; -1 = auto (1 epoch when batch > 256)")
    ("seed", po::value<int64_t>()->value_name("N")->default_value(0), "[train] seed of model init and data order")
    ("data-order", po::value<std::string>()->value_name("ORDER")->default_value("per-stage"),
     "[train] per-stage (each stage draws its own order from seed and stage name) | shared (every stage the same)")
    ("augment", po::value<std::string>()->value_name("KIND")->default_value("none"),
     "[train] none | crop-flip (zero-pad, random crop, horizontal flip; fixed-size records) | "
     "random-resized-crop (ImageNet recipe; encoded records); seeded, resume is bit-exact")
    ("augment-pad", po::value<int64_t>()->value_name("PX")->default_value(2), "[train] crop-flip padding in px (4 for 32x32 CIFAR)")
    ("distill", po::value<std::string>()->value_name("MODE")->default_value("none"),
     "[train] none | accurate: each quantized stage is supervised by its cycle's accurate model "
     "(c0-fp for cycle 1 and the baselines; RUN/plan.tsv), ReActNet's distributional loss, "
     "an extension beyond the paper")
    ("distill-weight", po::value<double>()->value_name("W")->default_value(1.0, "1.0"),
     "[train] with --distill-from: loss = (1-w) CE(labels) + w CE(teacher's softmax)")
    ("threads", po::value<int>()->value_name("N")->default_value(0), "[train] threads per rank; 0 = SLURM_CPUS_PER_TASK or the usable CPUs (affinity mask, cgroup quota) / ranks")
    ("loader-workers", po::value<int>()->value_name("N")->default_value(-1), "[train] threads preparing the next batches during a step; -1 = auto (1, or 2 with >= 4 threads per rank), 0 = on the training thread")
    ("device", po::value<std::string>()->value_name("DEVICE")->default_value("cpu"), "[train] cpu | cuda (one GPU per local rank)")
    ("checkpoint-every", po::value<int64_t>()->value_name("STEPS")->default_value(100), "[train] steps between checkpoints; 0 = only at the end")
    ("log-every", po::value<int64_t>()->value_name("STEPS")->default_value(10), "[train] steps between progress lines and metrics records")
    ("eval-every", po::value<int64_t>()->value_name("EPOCHS")->default_value(0),
     "[train] evaluate on [data] test-manifest after every N-th epoch but the last (metrics.jsonl, TensorBoard); 0 = off")
    ("tensorboard", po::value<bool>()->value_name("BOOL")->default_value(true, "true"),
     "[train] write TensorBoard event files to RUN/tensorboard/STAGE (tensorboard --logdir RUN/tensorboard)")
    ("requeue", po::value<bool>()->value_name("BOOL")->default_value(false, "false"), "[train] must stay false: requeues are decided by the Slurm job (site REQUEUE, MAX_REQUEUES; docs/slurm.md); accepted so older configs load")
    ("sync-batch-norm", po::value<std::string>()->value_name("MODE")->default_value("multi-rank"),
     "[train] multi-rank (synchronised BatchNorm when ranks > 1) | always (also on one rank: 1 and R ranks run identical arithmetic)");
  // clang-format on
}

std::string required(const po::variables_map& vm, const std::string& key, const char* hint) {
  CTMQ_CHECK(vm.count(key), "ctmq-train: --" << key << " is required (" << hint << ")");
  return vm[key].as<std::string>();
}

// Sets `key` to the plan's `fact` unless the command line gave it: a given
// flag overrides the plan (tests, benchmarks), with a warning when they differ.
template <typename T>
void take_fact(po::variables_map& vm, const char* key, const T& fact, const std::string& stage) {
  po::variable_value& value = vm.at(key);
  if (value.defaulted()) {
    value.value() = boost::any(fact);
  } else if (value.as<T>() != fact) {
    CTMQ_WARN("--" << key << " " << value.as<T>() << " overrides the plan's " << fact
                   << " for stage " << stage);
  }
}

// A stage's facts (bit depths, epochs, init) come from the run directory's
// plan (RUN/plan.tsv, written by ctmq-plan) when it names the stage, so the
// runners pass only --config, --run-dir and --stage. Without plan.tsv, or for
// a stage it does not name, the flags (or their defaults) stand.
void take_stage_facts_from_plan(po::variables_map& vm) {
  if (!vm.count("run-dir") || !vm.count("stage")) return;  // to_options names what is missing
  const RunLayout run(vm["run-dir"].as<std::string>());
  if (!std::filesystem::exists(run.plan())) return;
  const plan::StagePlan plan = plan::parse_plan_tsv(read_file(run.plan()), run.plan());
  const plan::Stage* stage = plan.find(vm["stage"].as<std::string>());
  if (!stage) return;
  take_fact(vm, "w-bits", stage->bits.weight, stage->name);
  take_fact(vm, "a-bits", stage->bits.activation, stage->name);
  take_fact(vm, "epochs", static_cast<int64_t>(stage->epochs), stage->name);
  take_fact(vm, "init", stage->init, stage->name);
}

train::TrainOptions to_options(const po::variables_map& vm, const po::options_description& desc) {
  train::TrainOptions o;
  o.run_dir = required(vm, "run-dir", "the run directory");
  o.stage = required(vm, "stage", "e.g. c1-w4a4");
  o.train_manifest = required(vm, "train-manifest", "[data] train-manifest in the config");
  o.init = vm["init"].as<std::string>();
  o.train_limit = vm["train-limit"].as<int64_t>();
  o.bits = {vm["w-bits"].as<int>(), vm["a-bits"].as<int>()};
  o.epochs = vm["epochs"].as<int64_t>();
  o.model.architecture = model::parse_architecture(vm["arch"].as<std::string>());
  o.model.width = vm["width"].as<int64_t>();
  o.model.block = model::parse_block(vm["block"].as<std::string>());
  CTMQ_CHECK(o.model.width >= 1, "--width " << o.model.width << " must be at least 1");
  o.model.quant.weight = quant::parse_weight_quantizer(vm["weight-quantizer"].as<std::string>());
  o.model.quant.activation =
      quant::parse_activation_quantizer(vm["activation-quantizer"].as<std::string>());
  o.model.quant.weight_granularity =
      quant::parse_granularity(vm["weight-granularity"].as<std::string>());
  o.model.quant.edge_layer_bits = vm["edge-layer-bits"].as<int>();
  o.pretrained_classifier =
      model::parse_pretrained_classifier(vm["pretrained-classifier"].as<std::string>());
  CTMQ_CHECK(o.model.quant.edge_layer_bits == 32 || o.model.quant.edge_layer_bits == 8,
             "--edge-layer-bits " << o.model.quant.edge_layer_bits << ": expected 32 or 8");
  o.batch = vm["batch"].as<int64_t>();
  o.optimizer = train::parse_optimizer_kind(vm["optimizer"].as<std::string>());
  o.lr = vm["lr"].as<double>();
  o.weight_decay = vm["weight-decay"].as<double>();
  o.momentum = vm["momentum"].as<double>();
  o.warmup_epochs = vm["warmup-epochs"].as<double>();
  const int64_t seed = vm["seed"].as<int64_t>();
  CTMQ_CHECK(seed >= 0, "--seed " << seed << " must be >= 0");
  o.seed = static_cast<uint64_t>(seed);
  o.data_order = train::parse_data_order(vm["data-order"].as<std::string>());
  o.augment = data::parse_augment(vm["augment"].as<std::string>());
  o.augment_pad = vm["augment-pad"].as<int64_t>();
  o.distill_from = vm["distill-from"].as<std::string>();
  const std::string distill = vm["distill"].as<std::string>();
  CTMQ_CHECK(distill == "none" || distill == "accurate",
             "--distill " << distill << " is not known; use one of: none, accurate");
  if (distill == "accurate" && o.distill_from == "none") {
    const RunLayout run(o.run_dir);
    CTMQ_CHECK(std::filesystem::exists(run.plan()),
               "--distill accurate needs "
                   << run.plan()
                   << " to find the stage's accurate model; start the "
                      "chain with pipeline/run-chain.sh or slurm/submit.sh, "
                      "or name the teacher with --distill-from STAGE");
    const std::string teacher =
        plan::accurate_teacher(plan::parse_plan_tsv(read_file(run.plan()), run.plan()), o.stage);
    if (!teacher.empty()) o.distill_from = teacher;
  }
  o.distill_weight = vm["distill-weight"].as<double>();
  o.threads = vm["threads"].as<int>();
  o.loader_workers = vm["loader-workers"].as<int>();
  o.device = dist::parse_device_kind(vm["device"].as<std::string>());
  o.checkpoint_every = vm["checkpoint-every"].as<int64_t>();
  o.log_every = vm["log-every"].as<int64_t>();
  o.eval_every = vm["eval-every"].as<int64_t>();
  o.tensorboard = vm["tensorboard"].as<bool>();
  if (vm.count("test-manifest")) o.test_manifest = vm["test-manifest"].as<std::string>();
  o.test_limit = vm["test-limit"].as<int64_t>();
  CTMQ_CHECK(!vm["requeue"].as<bool>(),
             "[train] requeue = true: ctmq-train no longer requeues its Slurm job; the job script "
             "does (site file REQUEUE=true, the default, and MAX_REQUEUES; docs/slurm.md). Set "
             "requeue = false or remove the key");
  o.batch_norm_sync = train::parse_batch_norm_sync(vm["sync-batch-norm"].as<std::string>());
  o.resolved_config = apps::resolved_config_ini(kInfo, desc, vm);
  train::validate(o);
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  install_preemption_handlers();  // first: a signal held by the launcher arrives now
  signal_at_test_point("main");
  std::unique_ptr<dist::MpiContext> mpi;
  return apps::run_mpi_main(kInfo.name, mpi,
                            [&]() -> int {
                              po::options_description desc("ctmq-train options");
                              add_options(desc);
                              po::variables_map vm;
                              if (!apps::parse_options(argc, argv, kInfo, desc, vm)) return 0;
                              take_stage_facts_from_plan(vm);
                              train::TrainOptions options = to_options(vm, desc);
                              mpi = std::make_unique<dist::MpiContext>(&argc, &argv);
                              signal_at_test_point("mpi-init");
                              const train::StageResult result = train::train_stage(options, *mpi);
                              return result.outcome == train::StageOutcome::kPreempted
                                         ? static_cast<int>(ExitCode::kPreempted)
                                         : static_cast<int>(ExitCode::kOk);
                            },
                            {static_cast<int>(ExitCode::kPreempted)});
}
