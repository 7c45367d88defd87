#include "ctmq/data/shard_writer.h"

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "ctmq/common/atomic_file.h"
#include "ctmq/common/error.h"

namespace ctmq::data {

ShardWriter::ShardWriter(std::string final_path, ImageShape shape, int64_t first_index,
                         int64_t count, int64_t num_classes, RecordKind record)
    : shape_(shape), kind_(record) {
  CTMQ_ASSERT(count > 0 && num_classes > 0 && shape.pixels() > 0);
  summary_.path = std::move(final_path);
  summary_.first_index = first_index;
  summary_.count = count;
  summary_.class_counts.assign(num_classes, 0);
  summary_.pixel_sum.assign(shape.channels, 0);
  summary_.pixel_sum_squares.assign(shape.channels, 0);
  if (kind_ == RecordKind::kFixed) {
    record_.resize(static_cast<size_t>(record_size(shape)));  // before a file exists
  } else {
    offsets_.reserve(static_cast<size_t>(count) + 1);
    offsets_.push_back(kShardHeaderSize);
  }
  temporary_path_ = temporary_path_for(summary_.path);
  file_ = std::fopen(temporary_path_.c_str(), "wb");
  CTMQ_CHECK(file_, "cannot create " << temporary_path_ << ": " << std::strerror(errno));
  std::setvbuf(file_, nullptr, _IOFBF, 1 << 20);
  ShardHeader header;
  header.version = shard_version_of(kind_);
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

void ShardWriter::check_label(int32_t label, const std::string& where) const {
  CTMQ_CHECK(added_ < summary_.count,
             "shard " << summary_.path << ": more than " << summary_.count << " records");
  CTMQ_CHECK(label >= 0 && label < static_cast<int64_t>(summary_.class_counts.size()),
             where << ": label " << label << " is outside [0, " << summary_.class_counts.size()
                   << "); check --class-names");
}

void ShardWriter::add(int32_t label, const uint8_t* pixels, const std::string& where) {
  CTMQ_ASSERT(kind_ == RecordKind::kFixed);
  check_label(label, where);
  const int64_t pixel_count = shape_.pixels();
  encode_le32(record_.data(), static_cast<uint32_t>(label));
  std::memcpy(record_.data() + 4, pixels, static_cast<size_t>(pixel_count));
  encode_le32(record_.data() + 4 + pixel_count, crc32_of(record_.data(), 4 + pixel_count));
  write(record_.data(), record_.size());
  ++summary_.class_counts[label];
  add_statistics(pixels, shape_.height * shape_.width);
  ++added_;
}

void ShardWriter::add_encoded(int32_t label, const std::string& bytes, const uint8_t* pixels,
                              int64_t height, int64_t width, const std::string& where) {
  CTMQ_ASSERT(kind_ == RecordKind::kEncoded && height > 0 && width > 0);
  check_label(label, where);
  CTMQ_CHECK(!bytes.empty(), where << ": an empty image file");
  char head[4], tail[4];
  encode_le32(head, static_cast<uint32_t>(label));
  encode_le32(tail, crc32_of(bytes.data(), bytes.size(), crc32_of(head, 4)));
  write(head, 4);
  write(bytes.data(), bytes.size());
  write(tail, 4);
  offsets_.push_back(static_cast<uint64_t>(summary_.bytes));
  ++summary_.class_counts[label];
  add_statistics(pixels, height * width);
  ++added_;
}

void ShardWriter::add_statistics(const uint8_t* pixels, int64_t plane) {
  summary_.pixel_count += static_cast<uint64_t>(plane);
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
}

ShardSummary ShardWriter::finish() {
  CTMQ_CHECK(added_ == summary_.count, "shard " << summary_.path << ": " << added_
                                                << " records written, expected " << summary_.count);
  if (kind_ == RecordKind::kEncoded) {  // the offset index ends the file
    std::vector<char> index(static_cast<size_t>(encoded_index_size(summary_.count)));
    for (size_t i = 0; i < offsets_.size(); ++i) encode_le64(index.data() + 8 * i, offsets_[i]);
    encode_le32(index.data() + 8 * offsets_.size(), crc32_of(index.data(), 8 * offsets_.size()));
    write(index.data(), index.size());
  }
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
