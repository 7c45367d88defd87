#include "ctmq/model/weights_io.h"

#include <filesystem>
#include <sstream>

#include "ctmq/common/atomic_file.h"
#include "ctmq/common/checksum.h"
#include "ctmq/common/error.h"
#include "ctmq/common/log.h"
#include "ctmq/common/sealed_file.h"
#include "ctmq/common/version.h"
#include "ctmq/model/network_description.h"
#include "ctmq/quant/layer_quantizer.h"

namespace ctmq::model {
namespace {

const char* weight_quantizer_name(quant::WeightQuantizer q) {
  return q == quant::WeightQuantizer::kLsq ? "lsq" : "dorefa";
}

const char* granularity_name(quant::Granularity g) {
  return g == quant::Granularity::kPerChannel ? "per-channel" : "per-tensor";
}

// The first line of a c10::Error (the rest is a C++ backtrace).
std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

constexpr SealKind kNetworkSeal{"network file", "CTMQNETW"};
constexpr int64_t kFirstSealedFormat = 3;

// Reads `path` whole, verifies its footer (format >= 3: every byte, before
// LibTorch's zip, pickle and TorchScript readers see any), and loads the
// archive. A format-1/2 file has no footer; its tensors are verified later.
void open_archive(torch::serialize::InputArchive& archive, const std::string& path) {
  CTMQ_CHECK(std::filesystem::exists(path), "network file " << path << " does not exist");
  const std::string bytes = read_file(path);
  const bool sealed = has_seal(bytes, kNetworkSeal);
  size_t payload = bytes.size();
  if (sealed)
    payload =
        unseal(bytes, kNetworkSeal, path, kFirstSealedFormat, kNetworkFileFormat).payload_size;
  try {
    archive.load_from(bytes.data(), payload);
  } catch (const std::exception& e) {
    CTMQ_FAIL("network file " << path << " cannot be read (" << first_line(e.what())
                              << "): it is corrupt or truncated; use an earlier checkpoint "
                                 "or re-run the stage that wrote it");
  }
  c10::IValue format;
  CTMQ_CHECK(sealed || !archive.try_read("ctmq_meta_format", format) ||
                 format.toInt() < kFirstSealedFormat,
             "network file " << path << " says format " << format.toInt()
                             << " but has no valid footer: it is damaged; use an earlier "
                                "checkpoint or re-run the stage that wrote it");
}

c10::IValue read_meta(torch::serialize::InputArchive& archive, const std::string& path,
                      const std::string& key) {
  c10::IValue value;
  CTMQ_CHECK(archive.try_read("ctmq_meta_" + key, value),
             "network file " << path << " has no '" << key
                             << "' metadata: it was not written by ctmq's save_network");
  return value;
}

NetworkFileInfo read_info(torch::serialize::InputArchive& archive, const std::string& path) {
  const int64_t format = read_meta(archive, path, "format").toInt();
  CTMQ_CHECK(format <= kNetworkFileFormat,
             "network file " << path << " has format " << format << "; this ctmq reads up to "
                             << kNetworkFileFormat << ": use a newer ctmq");
  NetworkFileInfo info;
  const NetworkDescription network =
      network_from_metadata([&](const std::string& key) { return read_meta(archive, path, key); });
  info.options.architecture = network.architecture;
  info.options.num_classes = network.num_classes;
  info.options.in_channels = network.in_channels;
  info.options.width = network.width;
  // Format 1 predates Block: its networks ran torchvision's block at full precision.
  info.options.block = format >= 2 ? parse_block(read_meta(archive, path, "block").toStringRef())
                                   : Block::kTorchvision;
  info.options.quant.weight =
      quant::parse_weight_quantizer(read_meta(archive, path, "weight_quantizer").toStringRef());
  info.options.quant.activation = quant::parse_activation_quantizer(
      read_meta(archive, path, "activation_quantizer").toStringRef());
  info.options.quant.weight_granularity =
      quant::parse_granularity(read_meta(archive, path, "weight_granularity").toStringRef());
  info.options.quant.edge_layer_bits =
      static_cast<int>(read_meta(archive, path, "edge_layer_bits").toInt());
  try {
    info.bits = {static_cast<int>(read_meta(archive, path, "weight_bits").toInt()),
                 static_cast<int>(read_meta(archive, path, "activation_bits").toInt())};
  } catch (const ctmq::Error& e) {
    CTMQ_FAIL("network file " << path << ": " << e.what());
  }
  if (format >= 3) {
    info.options.preprocessing.mean = read_meta(archive, path, "input_mean").toDoubleVector();
    info.options.preprocessing.std_dev = read_meta(archive, path, "input_std").toDoubleVector();
    CTMQ_CHECK(
        info.options.preprocessing.mean.size() == info.options.preprocessing.std_dev.size() &&
            (info.options.preprocessing.mean.empty() ||
             static_cast<int64_t>(info.options.preprocessing.mean.size()) ==
                 info.options.in_channels),
        "network file " << path
                        << ": its input normalisation does not match its input channels; "
                           "the file is corrupt");
  }
  info.ctmq_version = read_meta(archive, path, "ctmq_version").toStringRef();
  return info;
}

// CRC-32 over every parameter and buffer of `net` (names and bytes, in the
// module's own order): what a network file records of its tensors, so that a
// byte changed after writing is found on reading (zip keeps sizes, not data).
uint32_t tensors_crc32(torch::nn::Module& net) {
  uint32_t crc = 0;
  auto add = [&crc](const std::string& name, const torch::Tensor& tensor) {
    crc = crc32_of(name.data(), name.size(), crc);
    const torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
    crc = crc32_of(t.data_ptr(), t.nbytes(), crc);
  };
  for (const auto& p : net.named_parameters(/*recurse=*/true)) add(p.key(), p.value());
  for (const auto& b : net.named_buffers(/*recurse=*/true)) add(b.key(), b.value());
  return crc;
}

// Throws ctmq::Error naming `path` when `net`, just loaded from it, does not
// hash to the file's recorded tensors_crc32 (format >= 2; format 1 has none).
void verify_tensors(torch::nn::Module& net, torch::serialize::InputArchive& archive,
                    const std::string& path) {
  if (read_meta(archive, path, "format").toInt() < 2) return;
  const uint32_t stored = static_cast<uint32_t>(read_meta(archive, path, "tensors_crc32").toInt());
  const uint32_t computed = tensors_crc32(net);
  CTMQ_CHECK(
      stored == computed,
      "network file " << path << " fails its checksum (stored " << crc32_hex(stored)
                      << ", computed " << crc32_hex(computed)
                      << "): its weights changed after they were written; it is corrupt. "
                         "Retrain that stage (run-chain.sh --from STAGE) or restore the file");
}

bool is_quantizer_state(const std::string& name) {
  return name == "weight_step" || name == "input_step" || name == "input_clip";
}

// Copies every parameter and buffer of `module` from `archive` (Module::save
// layout). Missing LSQ steps are allowed when `allow_missing_steps`.
void load_tensors(torch::nn::Module& module, torch::serialize::InputArchive& archive,
                  const std::string& prefix, const std::string& path, bool allow_missing_steps) {
  torch::NoGradGuard no_grad;
  auto copy = [&](const std::string& name, torch::Tensor& target, bool is_buffer) {
    torch::Tensor source;
    if (!archive.try_read(name, source, is_buffer)) {
      CTMQ_CHECK(allow_missing_steps && is_quantizer_state(name),
                 "network file " << path << " has no tensor '" << prefix << name
                                 << "': it was saved from a different network");
      return;
    }
    CTMQ_CHECK(source.sizes() == target.sizes(),
               "network file " << path << ": tensor '" << prefix << name << "' has shape "
                               << source.sizes() << "; this network expects " << target.sizes());
    target.copy_(source);
  };
  for (auto& p : module.named_parameters(/*recurse=*/false)) copy(p.key(), p.value(), false);
  for (auto& b : module.named_buffers(/*recurse=*/false)) copy(b.key(), b.value(), true);
  for (const auto& child : module.named_children()) {
    torch::serialize::InputArchive child_archive;
    CTMQ_CHECK(archive.try_read(child.key(), child_archive),
               "network file " << path << " has no module '" << prefix << child.key()
                               << "': it was saved from a different network");
    load_tensors(*child.value(), child_archive, prefix + child.key() + ".", path,
                 allow_missing_steps);
  }
}

void load_checked(NetworkImpl& net, torch::serialize::InputArchive& archive,
                  const std::string& path, bool allow_missing_steps) {
  try {
    load_tensors(net, archive, "", path, allow_missing_steps);
  } catch (const c10::Error& e) {
    CTMQ_FAIL("network file " << path << " cannot be read (" << first_line(e.what())
                              << "): it is corrupt or truncated");
  }
}

}  // namespace

void save_network(NetworkImpl& net, const std::string& path) {
  const ModelOptions& o = net.options();
  const quant::BitDepths bits = net.bit_depths();
  torch::serialize::OutputArchive archive;
  auto meta = [&](const std::string& key, c10::IValue value) {
    archive.write("ctmq_meta_" + key, value);
  };
  meta("format", kNetworkFileFormat);
  for (const auto& [key, value] : network_metadata(describe_network(o))) meta(key, value);
  meta("block", block_name(o.block));
  meta("weight_quantizer", std::string(weight_quantizer_name(o.quant.weight)));
  meta("activation_quantizer", quant::activation_quantizer_name(o.quant.activation));
  meta("weight_granularity", std::string(granularity_name(o.quant.weight_granularity)));
  meta("edge_layer_bits", static_cast<int64_t>(o.quant.edge_layer_bits));
  meta("weight_bits", static_cast<int64_t>(bits.weight));
  meta("activation_bits", static_cast<int64_t>(bits.activation));
  meta("input_mean", c10::IValue(o.preprocessing.mean));
  meta("input_std", c10::IValue(o.preprocessing.std_dev));
  meta("ctmq_version", std::string(CTMQ_VERSION));
  meta("tensors_crc32", static_cast<int64_t>(tensors_crc32(net)));
  net.save(archive);

  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    CTMQ_CHECK(!ec, "cannot create directory " << parent.string() << " for network file " << path
                                               << ": " << ec.message());
  }
  std::ostringstream stream;
  try {
    archive.save_to(stream);
  } catch (const c10::Error& e) {
    CTMQ_FAIL("cannot write network file " << path << " (" << first_line(e.what()) << ")");
  }
  write_file_atomically(
      path, seal(stream.str(), kNetworkSeal, static_cast<uint32_t>(kNetworkFileFormat)));
}

NetworkFileInfo read_network_info(const std::string& path) {
  torch::serialize::InputArchive archive;
  open_archive(archive, path);
  return read_info(archive, path);
}

std::shared_ptr<NetworkImpl> load_network(const std::string& path) {
  torch::serialize::InputArchive archive;
  open_archive(archive, path);
  const NetworkFileInfo info = read_info(archive, path);
  std::shared_ptr<NetworkImpl> net = make_network(info.options);
  net->set_bit_depths(info.bits);
  load_checked(*net, archive, path, /*allow_missing_steps=*/false);
  verify_tensors(*net, archive, path);
  return net;
}

void load_weights_into(NetworkImpl& net, const std::string& path) {
  load_network(path);  // verifies every tensor against the file's checksum
  torch::serialize::InputArchive archive;
  open_archive(archive, path);
  const NetworkFileInfo info = read_info(archive, path);
  check_same_network(describe_network(info.options), describe_network(net.options()),
                     "checkpoint " + path);
  if (info.options.block != net.options().block) {
    CTMQ_WARN(
        "weights " << path << " come from a " << block_name(info.options.block)
                   << "-block network and are loaded into a " << block_name(net.options().block)
                   << "-block one: the function changes (docs/models.md, converting weights)");
  }
  const quant::BitDepths wanted = net.bit_depths();
  // Load at the file's depths, then switch: a changed depth re-initialises
  // k-dependent state from the loaded weights.
  net.set_bit_depths(info.bits);
  load_checked(net, archive, path, /*allow_missing_steps=*/true);
  net.set_bit_depths(wanted);
}

std::vector<QuantizedLayerView> quantized_layers(NetworkImpl& net) {
  torch::NoGradGuard no_grad;
  std::vector<QuantizedLayerView> views;
  for (const auto& m : net.named_modules("", /*include_self=*/false)) {
    if (auto* layer = dynamic_cast<quant::QuantizedLayer*>(m.value().get())) {
      views.push_back(
          {m.key(), layer->latent_weight(), layer->quantized_weight(), layer->bit_depths().weight});
    }
  }
  return views;
}

}  // namespace ctmq::model
