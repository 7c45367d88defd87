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
#include "ctmq/dist/collectives.h"
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
     {69,
      "a collective did not complete within [train] collective-timeout, or NCCL reported an "
      "error: another rank died, hung or cannot be reached; the last checkpoint is intact"},
     {75,
      "preempted by SIGUSR1/SIGTERM; checkpoint written if a step ran; rerun the same "
      "command to continue (docs/slurm.md)"}}};

// The values that are not TrainOptions fields as they stand: checked or
// converted in to_options.
struct RawOptions {
  int w_bits = quant::kFullPrecisionBits;
  int a_bits = quant::kFullPrecisionBits;
  int64_t seed = 0;
  std::string distill = "none";
  bool requeue = false;
};

// ctmq-train's options, each bound to its TrainOptions field (or RawOptions)
// with the struct's default.
void add_options(po::options_description& options, train::TrainOptions& o, RawOptions& raw) {
  using apps::bound;
  using apps::enum_value;
  // clang-format off
  options.add_options()
    ("run-dir", po::value(&o.run_dir)->value_name("DIR"), "run directory (required)")
    ("stage", po::value(&o.stage)->value_name("STAGE"), "stage name, e.g. c1-w4a4 (required)")
    ("w-bits", bound(&raw.w_bits)->value_name("K"), "weight bits: 1..8, 32 = full precision")
    ("a-bits", bound(&raw.a_bits)->value_name("K"), "activation bits: 1..8, 32 = full precision")
    ("epochs", bound(&o.epochs)->value_name("N"), "epochs of this stage")
    ("init", bound(&o.init)->value_name("SOURCE"),
     "none | STAGE (its final.pt; must be DONE) | torchvision:PATH | weights:PATH")
    ("distill-from", bound(&o.distill_from)->value_name("STAGE"),
     "none | STAGE: a DONE stage of this run that supervises this one (overrides --distill)");
  apps::add_data_options(options, &o.train_manifest, &o.test_manifest, &o.train_limit, &o.test_limit);
  options.add_options()
    // [model]
    ("arch", enum_value(&o.model.architecture, model::kArchitectureNames, "--arch")->value_name("NAME"), "[model] small-resnet | resnet20 | resnet18")
    ("width", bound(&o.model.width)->value_name("N"), "[model] channels of the first stage")
    ("block", enum_value(&o.model.block, model::kBlockNames, "--block")->value_name("KIND"),
     "[model] bi-real (one graph for every stage; hardtanh at full precision) | torchvision (ReLU block at full precision, for imported torchvision weights)")
    ("weight-quantizer", enum_value(&o.model.quant.weight, quant::kWeightQuantizerNames, "--weight-quantizer")->value_name("KIND"), "[model] dorefa | lsq")
    ("activation-quantizer", enum_value(&o.model.quant.activation, quant::kActivationQuantizerNames, "--activation-quantizer")->value_name("KIND"),
     "[model] signed | unsigned | lsq | pact (signed with a learned range)")
    ("weight-granularity", enum_value(&o.model.quant.weight_granularity, quant::kGranularityNames, "--weight-granularity")->value_name("KIND"),
     "[model] per-tensor | per-channel")
    ("edge-layer-bits", bound(&o.model.quant.edge_layer_bits)->value_name("K"), "[model] first conv, last linear, 1x1 shortcuts: 32 | 8")
    ("pretrained-classifier", enum_value(&o.pretrained_classifier, model::kPretrainedClassifierNames, "--pretrained-classifier")->value_name("MODE"),
     "[model] with --init torchvision:PATH: use (the file's fc; its class count must be the data set's) | reinit (fc initialised afresh, to fine-tune onto another class count)")
    // [train]
    ("batch", bound(&o.batch)->value_name("N"), "[train] global batch (sum over ranks)")
    ("optimizer", enum_value(&o.optimizer, train::kOptimizerKindNames, "--optimizer")->value_name("NAME"), "[train] auto | sgd | adam (auto: Adam at 1-bit weights)")
    ("lr", bound(&o.lr)->value_name("X"), "[train] learning rate; 0 = method default scaled by batch/256")
    ("weight-decay", bound(&o.weight_decay)->value_name("X"), "[train] -1 = method default")
    ("momentum", bound(&o.momentum)->value_name("X"), "[train] SGD momentum")
    ("warmup-epochs", bound(&o.warmup_epochs)->value_name("X"), "[train] linear warm-up; -1 = auto (1 epoch when batch > 256)")
    ("seed", bound(&raw.seed)->value_name("N"), "[train] seed of model init and data order")
    ("data-order", enum_value(&o.data_order, train::kDataOrderNames, "--data-order")->value_name("ORDER"),
     "[train] per-stage (each stage draws its own order from seed and stage name) | shared (every stage the same)")
    ("augment", enum_value(&o.augment, data::kAugmentNames, "--augment")->value_name("KIND"),
     "[train] none | crop-flip (zero-pad, random crop, horizontal flip; fixed-size records) | "
     "random-resized-crop (ImageNet recipe; encoded records); seeded, resume is bit-exact")
    ("augment-pad", bound(&o.augment_pad)->value_name("PX"), "[train] crop-flip padding in px (4 for 32x32 CIFAR)")
    ("distill", bound(&raw.distill)->value_name("MODE"),
     "[train] none | accurate: each quantized stage is supervised by its cycle's accurate model "
     "(c0-fp for cycle 1 and the baselines; RUN/plan.tsv), ReActNet's distributional loss, "
     "an extension beyond the paper")
    ("distill-weight", bound(&o.distill_weight)->value_name("W"),
     "[train] with --distill-from: loss = (1-w) CE(labels) + w CE(teacher's softmax)")
    ("threads", bound(&o.threads)->value_name("N"), "[train] threads per rank; 0 = SLURM_CPUS_PER_TASK or the usable CPUs (affinity mask, cgroup quota) / ranks")
    ("loader-workers", bound(&o.loader_workers)->value_name("N"), "[train] threads preparing the next batches during a step; -1 = auto (1, or 2 with >= 4 threads per rank), 0 = on the training thread")
    ("device", enum_value(&o.device, dist::kDeviceKindNames, "--device")->value_name("DEVICE"), "[train] cpu | cuda (one GPU per local rank)")
    ("checkpoint-every", bound(&o.checkpoint_every)->value_name("STEPS"), "[train] steps between checkpoints; 0 = only at the end")
    ("log-every", bound(&o.log_every)->value_name("STEPS"), "[train] steps between progress lines and metrics records")
    ("eval-every", bound(&o.eval_every)->value_name("EPOCHS"),
     "[train] evaluate on [data] test-manifest after every N-th epoch but the last (metrics.jsonl, TensorBoard); 0 = off")
    ("tensorboard", bound(&o.tensorboard)->value_name("BOOL"),
     "[train] write TensorBoard event files to RUN/tensorboard/STAGE (tensorboard --logdir RUN/tensorboard)")
    ("requeue", bound(&raw.requeue)->value_name("BOOL"), "[train] must stay false: requeues are decided by the Slurm job (site REQUEUE, MAX_REQUEUES; docs/slurm.md); accepted so older configs load")
    ("sync-batch-norm", enum_value(&o.batch_norm_sync, train::kBatchNormSyncNames, "--sync-batch-norm")->value_name("MODE"),
     "[train] auto (per-rank on cuda, multi-rank on cpu) | multi-rank (synchronised BatchNorm when ranks > 1) | always (also on one rank: 1 and R ranks run identical arithmetic) | per-rank (each rank its own batch statistics, as DDP: no BatchNorm communication; running statistics averaged over ranks before evaluations and checkpoints)")
    ("memory-format", enum_value(&o.memory_format, model::kMemoryFormatNames, "--memory-format")->value_name("FORMAT"),
     "[train] layout of the activations: channels-last (NHWC: oneDNN and cuDNN convolve it without reordering) | contiguous (NCHW). Same network and checkpoints; results differ by float rounding")
    ("overlap-allreduce", bound(&o.overlap_allreduce)->value_name("BOOL"),
     "[train] start each gradient bucket's allreduce during backward, as soon as its gradients are in (as DDP); false = all after backward. Same sums either way")
    ("allreduce-bucket-mb", bound(&o.allreduce_bucket_mb)->value_name("MIB"), "[train] gradients per allreduce bucket, MiB")
    ("collectives", enum_value(&o.collectives, dist::kCollectivesNames, "--collectives")->value_name("ENGINE"),
     "[train] auto (NCCL for several GPU ranks when built with it, else MPI) | mpi (GPU tensors staged through host memory) | nccl")
    ("collective-timeout", bound(&o.collective_timeout_s)->value_name("SECONDS"),
     "[train] end a rank whose collective has not completed after SECONDS (a dead, hung or unreachable peer), exit 69, or 75 after a preemption signal (then at most 60 s); 0 = wait for ever");
  // clang-format on
}

void require(const std::string& value, const char* key, const char* hint) {
  CTMQ_CHECK(!value.empty(), "ctmq-train: --" << key << " is required (" << hint << ")");
}

// Sets `field` to the plan's `fact` unless the command line (or config) gave
// `key`: a given flag overrides the plan (tests, benchmarks), with a warning
// when they differ.
// The variables map follows, so the resolved config.ini records the plan's value.
template <typename T>
void take_fact(po::variables_map& vm, const char* key, T& field, const T& fact,
               const std::string& stage) {
  if (vm.at(key).defaulted()) {
    field = fact;
    vm.at(key).value() = boost::any(fact);
  } else if (field != fact) {
    CTMQ_WARN("--" << key << " " << field << " overrides the plan's " << fact << " for stage "
                   << stage);
  }
}

// A stage's facts (bit depths, epochs, init) come from the run directory's
// plan (RUN/plan.tsv, written by ctmq-plan) when it names the stage, so the
// runners pass only --config, --run-dir and --stage. Without plan.tsv, or for
// a stage it does not name, the flags (or their defaults) stand.
void take_stage_facts_from_plan(po::variables_map& vm, train::TrainOptions& o, RawOptions& raw) {
  if (o.run_dir.empty() || o.stage.empty()) return;  // to_options names what is missing
  const RunLayout run(o.run_dir);
  if (!std::filesystem::exists(run.plan())) return;
  const plan::StagePlan plan = plan::parse_plan_tsv(read_file(run.plan()), run.plan());
  const plan::Stage* stage = plan.find(o.stage);
  if (!stage) return;
  take_fact(vm, "w-bits", raw.w_bits, stage->bits.weight, stage->name);
  take_fact(vm, "a-bits", raw.a_bits, stage->bits.activation, stage->name);
  take_fact(vm, "epochs", o.epochs, static_cast<int64_t>(stage->epochs), stage->name);
  take_fact(vm, "init", o.init, stage->init, stage->name);
}

// What the bound options leave to check or convert.
void to_options(const RawOptions& raw, train::TrainOptions& o) {
  require(o.run_dir, "run-dir", "the run directory");
  require(o.stage, "stage", "e.g. c1-w4a4");
  require(o.train_manifest, "train-manifest", "[data] train-manifest in the config");
  CTMQ_CHECK(quant::is_valid_bits(raw.w_bits) && quant::is_valid_bits(raw.a_bits),
             "--w-bits " << raw.w_bits << " / --a-bits " << raw.a_bits
                         << " is out of range; expected 1..8 or 32 for each");
  o.bits = {raw.w_bits, raw.a_bits};
  CTMQ_CHECK(o.model.width >= 1, "--width " << o.model.width << " must be at least 1");
  CTMQ_CHECK(o.model.quant.edge_layer_bits == 32 || o.model.quant.edge_layer_bits == 8,
             "--edge-layer-bits " << o.model.quant.edge_layer_bits << ": expected 32 or 8");
  CTMQ_CHECK(raw.seed >= 0, "--seed " << raw.seed << " must be >= 0");
  o.seed = static_cast<uint64_t>(raw.seed);
  CTMQ_CHECK(raw.distill == "none" || raw.distill == "accurate",
             "--distill " << raw.distill << " is not known; use one of: none, accurate");
  if (raw.distill == "accurate" && o.distill_from == "none") {
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
  CTMQ_CHECK(!raw.requeue,
             "[train] requeue = true: ctmq-train no longer requeues its Slurm job; the job script "
             "does (site file REQUEUE=true, the default, and MAX_REQUEUES; docs/slurm.md). Set "
             "requeue = false or remove the key");
  train::validate(o);
}

}  // namespace

int main(int argc, char** argv) {
  install_preemption_handlers();  // first: a signal held by the launcher arrives now
  signal_at_test_point("main");
  std::unique_ptr<dist::MpiContext> mpi;
  return apps::run_mpi_main(
      kInfo.name, mpi,
      [&]() -> int {
        train::TrainOptions options;
        RawOptions raw;
        po::options_description desc("ctmq-train options");
        add_options(desc, options, raw);
        po::variables_map vm;
        if (!apps::parse_options(argc, argv, kInfo, desc, vm)) return 0;
        take_stage_facts_from_plan(vm, options, raw);
        to_options(raw, options);
        options.resolved_config = apps::resolved_config_ini(kInfo, desc, vm);
        mpi = std::make_unique<dist::MpiContext>(&argc, &argv);
        mpi->set_collective_timeout(options.collective_timeout_s);
        signal_at_test_point("mpi-init");
        const std::unique_ptr<dist::Communicator> nccl = dist::device_communicator(
            *mpi, options.collectives, options.device, options.collective_timeout_s);
        const train::StageResult result = train::train_stage(options, nccl ? *nccl : *mpi);
        return result.outcome == train::StageOutcome::kPreempted
                   ? static_cast<int>(ExitCode::kPreempted)
                   : static_cast<int>(ExitCode::kOk);
      },
      {static_cast<int>(ExitCode::kPreempted)});
}
