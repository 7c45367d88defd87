#include "ctmq/data/shard_writer.h"

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "ctmq/common/atomic_file.h"
#include "ctmq/common/error.h"

namespace ctmq::data {

ShardWriter::ShardWriter(std::string final_path, ImageShape shape, int64_t first_index,
                         int64_t count, int64_t num_classes)
    : shape_(shape) {
  CTMQ_ASSERT(count > 0 && num_classes > 0 && shape.pixels() > 0);
  summary_.path = std::move(final_path);
  summary_.first_index = first_index;
  summary_.count = count;
  summary_.class_counts.assign(num_classes, 0);
  summary_.pixel_sum.assign(shape.channels, 0);
  summary_.pixel_sum_squares.assign(shape.channels, 0);
  record_.resize(static_cast<size_t>(record_size(shape)));  // before a file exists
  temporary_path_ = temporary_path_for(summary_.path);
  file_ = std::fopen(temporary_path_.c_str(), "wb");
  CTMQ_CHECK(file_, "cannot create " << temporary_path_ << ": " << std::strerror(errno));
  std::setvbuf(file_, nullptr, _IOFBF, 1 << 20);
  ShardHeader header;
  header.shape = shape;
  header.record_count = static_cast<uint64_t>(count);
  header.first_index = static_cast<uint64_t>(first_index);
  try {
    const std::string bytes = encode_shard_header(header);
    write(bytes.data(), bytes.size());
  } catch (...) {  // the destructor does not run for a constructor that throws
    std::fclose(file_);
    file_ = nullptr;
    std::error_code ec;
    std::filesystem::remove(temporary_path_, ec);
    throw;
  }
}

ShardWriter::~ShardWriter() {
  if (file_) {
    std::fclose(file_);
    std::error_code ec;
    std::filesystem::remove(temporary_path_, ec);
  }
}

void ShardWriter::write(const void* data, size_t size) {
  CTMQ_CHECK(std::fwrite(data, 1, size, file_) == size,
             "cannot write " << temporary_path_ << " (disk full?): " << std::strerror(errno));
  summary_.crc32 = crc32_of(data, size, summary_.crc32);
  summary_.bytes += static_cast<int64_t>(size);
}

void ShardWriter::add(int32_t label, const uint8_t* pixels, const std::string& where) {
  CTMQ_CHECK(added_ < summary_.count,
             "shard " << summary_.path << ": more than " << summary_.count << " records");
  CTMQ_CHECK(label >= 0 && label < static_cast<int64_t>(summary_.class_counts.size()),
             where << ": label " << label << " is outside [0, " << summary_.class_counts.size()
                   << "); check --class-names");
  const int64_t pixel_count = shape_.pixels();
  put_u32(record_.data(), static_cast<uint32_t>(label));
  std::memcpy(record_.data() + 4, pixels, static_cast<size_t>(pixel_count));
  put_u32(record_.data() + 4 + pixel_count, crc32_of(record_.data(), 4 + pixel_count));
  write(record_.data(), record_.size());
  ++summary_.class_counts[label];
  const int64_t plane = shape_.height * shape_.width;
  for (int64_t c = 0; c < shape_.channels; ++c) {
    const uint8_t* p = pixels + c * plane;
    uint64_t sum = 0, squares = 0;
    for (int64_t i = 0; i < plane; ++i) {
      sum += p[i];
      squares += uint32_t{p[i]} * p[i];
    }
    summary_.pixel_sum[c] += sum;
    summary_.pixel_sum_squares[c] += squares;
  }
  ++added_;
}

ShardSummary ShardWriter::finish() {
  CTMQ_CHECK(added_ == summary_.count, "shard " << summary_.path << ": " << added_
                                                << " records written, expected " << summary_.count);
  const bool flushed = std::fflush(file_) == 0;
  const bool closed = std::fclose(file_) == 0;
  file_ = nullptr;
  if (!flushed || !closed) {
    std::error_code ec;
    std::filesystem::remove(temporary_path_, ec);
    CTMQ_FAIL("cannot write " << temporary_path_ << " (disk full?)");
  }
  commit_file_atomically(temporary_path_, summary_.path);
  return summary_;
}

}  // namespace ctmq::data
