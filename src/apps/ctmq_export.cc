// ctmq-export: a stage's weights in a form for use outside ctmq. Format
// `packed` (docs/packed-format.md): a W1A1 stage as 1-bit weights with
// BatchNorm folded, for ctmq-infer. Format `state-dict` (docs/deploy.md, "In
// PyTorch"): any stage as a torch.load-able dict of tensors plus OUTPUT.json,
// which describes the network and its quantizers.
//
// Exit codes: 0 written, 1 an error or bad options (named; nothing written).
#include <filesystem>
#include <iomanip>
#include <iostream>

#include "apps/app_options.h"
#include "ctmq/common/atomic_file.h"
#include "ctmq/common/error.h"
#include "ctmq/common/run_layout.h"
#include "ctmq/deploy/packed_export.h"
#include "ctmq/deploy/packed_resnet.h"
#include "ctmq/deploy/state_dict_export.h"
#include "ctmq/model/weights_io.h"

namespace {

namespace po = ctmq::apps::po;

// Bytes of the binary layers in the packed file (sign bits, scale, bias)
// against their float32 weights in the network file.
void print_sizes(ctmq::model::NetworkImpl& net, const ctmq::deploy::PackedModel& packed,
                 size_t file_bytes, const std::string& output) {
  const auto parameters = net.named_parameters();
  int64_t packed_bytes = 0, float_bytes = 0;
  for (const auto& [name, b] : packed.bits) {
    const std::string layer = name.substr(0, name.rfind('.'));
    packed_bytes +=
        static_cast<int64_t>(b.words.size() * sizeof(uint64_t)) +
        (packed.floats.at(layer + ".scale").numel() + packed.floats.at(layer + ".bias").numel()) *
            static_cast<int64_t>(sizeof(float));
    float_bytes += parameters[layer + ".weight"].numel() * static_cast<int64_t>(sizeof(float));
  }
  std::cout << "ctmq-export: wrote " << output << " (" << file_bytes << " bytes); binary layers "
            << packed_bytes << " bytes against " << float_bytes << " bytes of float32 weights ("
            << std::fixed << std::setprecision(1)
            << static_cast<double>(float_bytes) / static_cast<double>(packed_bytes)
            << "x smaller)\n";
}

}  // namespace

int main(int argc, char** argv) {
  return ctmq::apps::run_main("ctmq-export", [&] {
    const ctmq::apps::AppInfo info{
        "ctmq-export",
        "write a stage's weights for use outside ctmq: --format packed (a W1A1 stage as 1-bit "
        "weights for ctmq-infer, docs/packed-format.md) or --format state-dict (any stage for "
        "PyTorch: torch.load-able tensors plus OUTPUT.json, docs/deploy.md)",
        {"export"},
        {"ctmq-export --run-dir runs/a --stage c2-w1a1 --format packed --output c2-w1a1.packed",
         "ctmq-export --run-dir runs/a --stage c1-w4a4 --format state-dict --output c1-w4a4.pt",
         "ctmq-export --network runs/a/stages/c0-fp/final.pt --format state-dict --output fp.pt"},
        {{0, "written"}}};
    std::string run_dir, stage, network, format, output;
    po::options_description options("Export ([export] section)");
    options.add_options()("run-dir", po::value(&run_dir)->value_name("DIR"),
                          "the run directory (with --stage)")(
        "stage", po::value(&stage)->value_name("STAGE"),
        "the stage to export (must be DONE): the network its eval.json scored (eval-network.pt "
        "when ctmq-eval re-estimated BatchNorm, else final.pt)")(
        "network", po::value(&network)->value_name("FILE"),
        "a network file (final.pt) to export instead of --run-dir/--stage")(
        "format", po::value(&format)->value_name("FORMAT")->default_value("packed"),
        "packed: 1-bit weights, BatchNorm folded (W1A1 stages only); state-dict: any stage, "
        "tensors for torch.load plus the network description OUTPUT.json")(
        "output", po::value(&output)->value_name("FILE")->required(),
        "the file to write (replaced atomically)");
    po::variables_map vm;
    if (!ctmq::apps::parse_options(argc, argv, info, options, vm)) return 0;
    CTMQ_CHECK(format == "packed" || format == "state-dict",
               "--format " << format << " is not known; the formats are: packed, state-dict");
    CTMQ_CHECK(network.empty() != (run_dir.empty() && stage.empty()),
               "give either --network FILE or --run-dir RUN --stage STAGE");
    if (network.empty()) {
      CTMQ_CHECK(!run_dir.empty() && !stage.empty(), "--run-dir and --stage go together");
      const ctmq::RunLayout run(run_dir);
      CTMQ_CHECK(run.is_done(stage), "stage " << stage << " is not DONE in " << run_dir
                                              << "; train it first (ctmq-train or the runner)");
      // The network eval.json scored: with BatchNorm re-estimated, ctmq-eval
      // saved it beside final.pt; otherwise it is final.pt.
      network = std::filesystem::exists(run.eval_network(stage)) ? run.eval_network(stage)
                                                                 : run.final_weights(stage);
      std::cout << "ctmq-export: stage " << stage << ": "
                << (format == "packed" ? "packing " : "exporting ") << network << "\n";
    }
    auto net = ctmq::model::load_network(network);
    net->eval();
    if (format == "state-dict") {
      const size_t bytes = ctmq::deploy::write_state_dict_export(*net, output, network);
      std::cout << "ctmq-export: wrote " << output << " (" << bytes << " bytes, "
                << net->bit_depths().tag() << ") and "
                << ctmq::deploy::state_dict_description_path(output) << "\n";
      return 0;
    }
    const ctmq::deploy::PackedModel packed = ctmq::deploy::pack_network(*net, network);
    const std::string bytes = ctmq::deploy::encode_packed(packed);
    // What is written must load: decode and build the inference network first.
    ctmq::deploy::PackedResNet check(ctmq::deploy::decode_packed(bytes, output), output);
    (void)check;
    ctmq::write_file_atomically(output, bytes);
    print_sizes(*net, packed, bytes.size(), output);
    return 0;
  });
}
