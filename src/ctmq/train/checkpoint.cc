#include "ctmq/train/checkpoint.h"

#include <algorithm>
#include <filesystem>
#include <iomanip>
#include <sstream>

#include "ctmq/common/atomic_file.h"
#include "ctmq/common/error.h"
#include "ctmq/common/log.h"
#include "ctmq/common/sealed_file.h"
#include "ctmq/common/version.h"

namespace ctmq::train {
namespace fs = std::filesystem;
namespace {

constexpr SealKind kCheckpointSeal{"checkpoint", "CTMQCKP1"};

std::string file_name_for(int64_t global_step) {
  std::ostringstream name;
  name << "step-" << std::setw(8) << std::setfill('0') << global_step << ".pt";
  return name.str();
}

void write_meta(torch::serialize::OutputArchive& a, const CheckpointMeta& m) {
  a.write("meta_format_version", c10::IValue(kCheckpointFormatVersion));
  a.write("meta_stage", c10::IValue(m.stage));
  a.write("meta_w_bits", c10::IValue(static_cast<int64_t>(m.bits.weight)));
  a.write("meta_a_bits", c10::IValue(static_cast<int64_t>(m.bits.activation)));
  for (const auto& [key, value] : model::network_metadata(m.network()))
    a.write("meta_" + key, value);
  a.write("meta_epoch", c10::IValue(m.epoch));
  a.write("meta_step_in_epoch", c10::IValue(m.step_in_epoch));
  a.write("meta_global_step", c10::IValue(m.global_step));
  a.write("meta_world_size", c10::IValue(m.world_size));
  a.write("meta_config", c10::IValue(m.config));
  a.write("meta_ctmq_version", c10::IValue(m.ctmq_version));
  a.write("meta_torch_version", c10::IValue(m.torch_version));
}

c10::IValue read_value(torch::serialize::InputArchive& a, const std::string& key) {
  c10::IValue v;
  a.read(key, v);
  return v;
}
int64_t read_int(torch::serialize::InputArchive& a, const char* key) {
  return read_value(a, key).toInt();
}
std::string read_string(torch::serialize::InputArchive& a, const char* key) {
  return read_value(a, key).toStringRef();
}

CheckpointMeta read_meta(torch::serialize::InputArchive& a, const std::string& path) {
  const int64_t version = read_int(a, "meta_format_version");
  CTMQ_CHECK(version <= kCheckpointFormatVersion,
             "checkpoint " << path << " has format version " << version
                           << "; this ctmq reads up to " << kCheckpointFormatVersion
                           << ": use a newer ctmq-train");
  CheckpointMeta m;
  m.stage = read_string(a, "meta_stage");
  try {
    m.bits = {static_cast<int>(read_int(a, "meta_w_bits")),
              static_cast<int>(read_int(a, "meta_a_bits"))};
  } catch (const ctmq::Error& e) {
    CTMQ_FAIL("checkpoint " << path << ": " << e.what());
  }
  m.set_network(model::network_from_metadata(
      [&a](const std::string& key) { return read_value(a, "meta_" + key); }));
  m.epoch = read_int(a, "meta_epoch");
  m.step_in_epoch = read_int(a, "meta_step_in_epoch");
  m.global_step = read_int(a, "meta_global_step");
  m.world_size = read_int(a, "meta_world_size");
  m.config = read_string(a, "meta_config");
  m.ctmq_version = read_string(a, "meta_ctmq_version");
  m.torch_version = read_string(a, "meta_torch_version");
  return m;
}

}  // namespace

model::NetworkDescription CheckpointMeta::network() const {
  return {model::parse_architecture(architecture), num_classes, in_channels, width};
}

void CheckpointMeta::set_network(const model::NetworkDescription& network) {
  architecture = model::architecture_name(network.architecture);
  num_classes = network.num_classes;
  in_channels = network.in_channels;
  width = network.width;
}

void Checkpoint::restore(torch::nn::Module& model, torch::optim::Optimizer& optimizer) const {
  torch::serialize::InputArchive model_archive, optimizer_archive;
  archive_->read("model", model_archive);
  archive_->read("optimizer", optimizer_archive);
  model.load(model_archive);
  optimizer.load(optimizer_archive);
  torch::Tensor rng;
  if (archive_->try_read("rng_cpu", rng)) {
    auto generator = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(rng.cpu());
  }
}

CheckpointStore::CheckpointStore(std::string directory, int keep)
    : directory_(std::move(directory)), keep_(keep) {
  CTMQ_ASSERT(keep >= 2);
}

std::string CheckpointStore::save(CheckpointMeta meta, torch::nn::Module& model,
                                  torch::optim::Optimizer& optimizer) const {
  meta.ctmq_version = CTMQ_VERSION;
  meta.torch_version = TORCH_VERSION;
  torch::serialize::OutputArchive archive, model_archive, optimizer_archive;
  model.save(model_archive);
  optimizer.save(optimizer_archive);
  archive.write("model", model_archive);
  archive.write("optimizer", optimizer_archive);
  {
    auto generator = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(generator.mutex());
    archive.write("rng_cpu", generator.get_state());
  }
  write_meta(archive, meta);
  std::ostringstream stream;
  archive.save_to(stream);
  const std::string bytes =
      seal(stream.str(), kCheckpointSeal, static_cast<uint32_t>(kCheckpointFormatVersion));
  const std::string path = path_for(meta.global_step);
  write_file_atomically(path, bytes);
  auto files = list();
  for (size_t i = static_cast<size_t>(keep_); i < files.size(); ++i) {
    std::error_code ec;
    fs::remove(files[i], ec);  // best effort: an extra old file does no harm
  }
  return path;
}

std::string CheckpointStore::path_for(int64_t global_step) const {
  return (fs::path(directory_) / file_name_for(global_step)).string();
}

Checkpoint CheckpointStore::load(const std::string& path, torch::Device device) {
  return from_bytes(read_file(path), path, device);
}

Checkpoint CheckpointStore::from_bytes(const std::string& bytes, const std::string& path,
                                       torch::Device device) {
  const auto version = static_cast<uint32_t>(kCheckpointFormatVersion);
  const size_t payload = unseal(bytes, kCheckpointSeal, path, version, version).payload_size;
  Checkpoint checkpoint;
  checkpoint.path_ = path;
  checkpoint.archive_ = std::make_shared<torch::serialize::InputArchive>();
  try {
    checkpoint.archive_->load_from(bytes.data(), payload, device);
    checkpoint.meta_ = read_meta(*checkpoint.archive_, path);
  } catch (const ctmq::Error&) {
    throw;
  } catch (const std::exception& e) {
    CTMQ_FAIL("checkpoint " << path << " cannot be read: " << e.what());
  }
  return checkpoint;
}

std::optional<Checkpoint> CheckpointStore::load_newest_valid(torch::Device device) const {
  for (const auto& path : list()) {
    try {
      return load(path, device);
    } catch (const ctmq::Error& e) {
      CTMQ_WARN(e.what() << "; falling back to the previous checkpoint");
    }
  }
  const size_t damaged = list().size();
  CTMQ_CHECK(damaged == 0, "every checkpoint in "
                               << directory_ << " is damaged (" << damaged
                               << " file(s), see the warnings above); the stage will not "
                                  "start again from its init by itself: move "
                               << directory_
                               << " aside to do so, or restore a checkpoint from a backup");
  return std::nullopt;
}

std::vector<std::string> CheckpointStore::list() const {
  std::vector<std::pair<int64_t, std::string>> found;
  std::error_code ec;
  if (!fs::is_directory(directory_, ec)) return {};
  for (const auto& entry : fs::directory_iterator(directory_, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() <= 8 || name.rfind("step-", 0) != 0 ||
        name.compare(name.size() - 3, 3, ".pt") != 0) {
      continue;  // temporary files (".pt.tmp.*") and anything else
    }
    const std::string digits = name.substr(5, name.size() - 8);
    if (digits.find_first_not_of("0123456789") != std::string::npos) continue;
    found.emplace_back(std::stoll(digits), entry.path().string());
  }
  std::sort(found.rbegin(), found.rend());
  std::vector<std::string> files;
  for (auto& f : found) files.push_back(std::move(f.second));
  return files;
}

}  // namespace ctmq::train
