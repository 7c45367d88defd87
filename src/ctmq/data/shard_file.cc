#include "ctmq/data/shard_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "ctmq/common/error.h"

namespace ctmq::data {

ShardFile::ShardFile(std::string path, const std::string& named_by) : path_(std::move(path)) {
  fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  CTMQ_CHECK(fd_ >= 0, "shard " << path_ << (named_by.empty() ? "" : " named by ") << named_by
                                << " cannot be opened (" << std::strerror(errno)
                                << "); the data set is incomplete: rebuild it with ctmq-shard");
  try {
    char bytes[kShardHeaderSize];
    const ssize_t got = ::pread(fd_, bytes, kShardHeaderSize, 0);
    header_ = decode_shard_header(path_, bytes, got < 0 ? 0 : static_cast<size_t>(got));
    struct stat info;
    CTMQ_CHECK(::fstat(fd_, &info) == 0, "cannot stat shard " << path_);
    file_size_ = info.st_size;
  } catch (...) {  // the destructor does not run for a constructor that throws
    ::close(fd_);
    throw;
  }
}

ShardFile::~ShardFile() {
  if (fd_ >= 0) ::close(fd_);
}

ShardFile::ShardFile(ShardFile&& other) noexcept
    : path_(std::move(other.path_)),
      fd_(std::exchange(other.fd_, -1)),
      header_(other.header_),
      file_size_(other.file_size_),
      offsets_(std::move(other.offsets_)) {}

ShardFile& ShardFile::operator=(ShardFile&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
    header_ = other.header_;
    file_size_ = other.file_size_;
    offsets_ = std::move(other.offsets_);
  }
  return *this;
}

void ShardFile::read_at(uint64_t offset, size_t size, char* out, const std::string& what) const {
  const ssize_t got = ::pread(fd_, out, size, static_cast<off_t>(offset));
  CTMQ_CHECK(got == static_cast<ssize_t>(size),
             what << " cannot be read (" << (got < 0 ? std::strerror(errno) : "short read")
                  << "); the file is truncated: rebuild it with ctmq-shard");
}

void ShardFile::read_offset_index() {
  CTMQ_ASSERT(header_.record() == RecordKind::kEncoded);
  const int64_t count = static_cast<int64_t>(header_.record_count);
  const int64_t index_bytes = encoded_index_size(count);
  const int64_t smallest = kShardHeaderSize + count * (kEncodedRecordOverhead + 1) + index_bytes;
  CTMQ_CHECK(file_size_ >= smallest,
             "shard " << path_ << ": " << file_size_ << " bytes, too short for " << count
                      << " encoded records and their offset index; the file is truncated: "
                         "rebuild it with ctmq-shard");
  std::vector<char> bytes(static_cast<size_t>(index_bytes));
  read_at(static_cast<uint64_t>(file_size_ - index_bytes), bytes.size(), bytes.data(),
          "shard " + path_ + ": its offset index");
  const size_t entries = static_cast<size_t>(count) + 1;
  CTMQ_CHECK(decode_le32(bytes.data() + 8 * entries) == crc32_of(bytes.data(), 8 * entries),
             "shard " << path_
                      << ": offset index checksum mismatch; the file is truncated or corrupt: "
                         "rebuild it with ctmq-shard");
  offsets_.resize(entries);
  for (size_t i = 0; i < entries; ++i) offsets_[i] = decode_le64(bytes.data() + 8 * i);
  CTMQ_CHECK(offsets_.front() == kShardHeaderSize &&
                 offsets_.back() == static_cast<uint64_t>(file_size_ - index_bytes),
             "shard " << path_ << ": the offset index spans bytes [" << offsets_.front() << ", "
                      << offsets_.back() << "), expected [" << kShardHeaderSize << ", "
                      << file_size_ - index_bytes
                      << "); the file is truncated or padded: rebuild it with ctmq-shard");
  for (int64_t i = 0; i < count; ++i) {
    const uint64_t begin = offsets_[i], end = offsets_[i + 1];
    CTMQ_CHECK(end > begin && end - begin >= static_cast<uint64_t>(kEncodedRecordOverhead + 1),
               "shard " << path_ << ": record " << i << " (data set index "
                        << header_.first_index + i << ") has offsets [" << begin << ", " << end
                        << ") out of range in the offset index; the file is corrupt: "
                           "rebuild it with ctmq-shard");
  }
}

uint32_t ShardFile::file_crc32() const {
  std::vector<char> buffer(1 << 20);
  uint32_t crc = 0;
  off_t at = 0;
  ssize_t got;
  while ((got = ::pread(fd_, buffer.data(), buffer.size(), at)) > 0) {
    crc = crc32_of(buffer.data(), static_cast<size_t>(got), crc);
    at += got;
  }
  CTMQ_CHECK(got == 0, "error while reading " << path_);
  return crc;
}

}  // namespace ctmq::data
