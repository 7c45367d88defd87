#include "ctmq/train/event_file_writer.h"

#include <unistd.h>

#include <chrono>
#include <climits>
#include <filesystem>

#include "ctmq/common/byte_coding.h"
#include "ctmq/common/checksum.h"
#include "ctmq/common/error.h"
#include "ctmq/train/tensorboard_event.pb.h"

namespace ctmq::train {
namespace {

// CRC-32C masked as TFRecord does, so that a CRC of data that itself holds
// CRCs stays well distributed.
uint32_t masked_crc32c(const void* data, size_t size) {
  const uint32_t c = crc32c_of(data, size);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

double unix_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string hostname() {
  char name[HOST_NAME_MAX + 1] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

}  // namespace

EventFileWriter::EventFileWriter(const std::string& directory) {
  namespace fs = std::filesystem;
  std::error_code error;
  fs::create_directories(directory, error);
  CTMQ_CHECK(!error, "cannot create the TensorBoard directory " << directory << ": "
                                                                << error.message()
                                                                << " (set [train] tensorboard = "
                                                                   "false to train without it)");
  const double now = unix_seconds();
  const std::string stem = directory + "/events.out.tfevents." +
                           std::to_string(static_cast<int64_t>(now)) + "." + hostname();
  path_ = stem;
  for (int n = 1; fs::exists(path_); ++n) path_ = stem + "." + std::to_string(n);
  out_.open(path_, std::ios::binary | std::ios::app);
  CTMQ_CHECK(out_, "cannot create the TensorBoard event file " << path_);
  tensorboard::Event event;
  event.set_wall_time(now);
  event.set_file_version("brain.Event:2");
  write_record(event.SerializeAsString());
}

void EventFileWriter::write_scalars(int64_t step,
                                    const std::vector<std::pair<std::string, double>>& scalars) {
  tensorboard::Event event;
  event.set_wall_time(unix_seconds());
  event.set_step(step);
  for (const auto& [tag, value] : scalars) {
    tensorboard::Summary::Value* v = event.mutable_summary()->add_value();
    v->set_tag(tag);
    v->set_simple_value(static_cast<float>(value));
  }
  write_record(event.SerializeAsString());
}

void EventFileWriter::write_record(const std::string& data) {
  std::string record;
  append_le64(record, data.size());
  append_le32(record, masked_crc32c(record.data(), 8));
  record += data;
  append_le32(record, masked_crc32c(data.data(), data.size()));
  out_.write(record.data(), static_cast<std::streamsize>(record.size()));
  out_.flush();
  CTMQ_CHECK(out_, "cannot append to the TensorBoard event file " << path_ << " (disk full?)");
}

}  // namespace ctmq::train
