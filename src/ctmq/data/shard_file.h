// One shard file opened for reading (docs/shard-format.md): its descriptor,
// its checked header and, for version 2, its checked offset index. The one
// place that opens a shard and reads its header: ShardDataset, ctmq-shard's
// merge step and verify_data_set (--check) all go through it, so every
// reader refuses a bad file with the same words, naming the file.
//
// Thread safety: const methods may be called concurrently (pread: no shared
// file offset). Move-only; the descriptor is closed by the destructor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "ctmq/data/shard_format.h"

namespace ctmq::data {

class ShardFile {
 public:
  // Opens `path` and reads and checks its header (decode_shard_header: magic,
  // version, crc32, dtype, record size). `named_by` ("manifest M", empty for
  // none) says who named the file, for the message when it cannot be opened.
  // Throws ctmq::Error naming `path`: cannot be opened (the data set is
  // incomplete), shorter than the header, or any header check.
  explicit ShardFile(std::string path, const std::string& named_by = "");
  ~ShardFile();
  ShardFile(ShardFile&& other) noexcept;
  ShardFile& operator=(ShardFile&& other) noexcept;
  ShardFile(const ShardFile&) = delete;
  ShardFile& operator=(const ShardFile&) = delete;

  const std::string& path() const { return path_; }
  const ShardHeader& header() const { return header_; }
  int64_t file_size() const { return file_size_; }  // bytes, when opened

  // Version 2: reads and checks the offset index that ends the file (its
  // position follows from the file size and the header's record count):
  // long enough, crc32, first offset = header end, last = index start, every
  // record at least kEncodedRecordOverhead + 1 bytes. Throws ctmq::Error
  // naming the file (and the record) otherwise. REQUIRES: version 2.
  void read_offset_index();
  // After read_offset_index: record i is bytes [offsets()[i], offsets()[i+1]).
  const std::vector<uint64_t>& offsets() const { return offsets_; }

  // Reads exactly `size` bytes at byte `offset` into `out`. Throws ctmq::Error
  // "WHAT cannot be read (REASON); the file is truncated: ..." otherwise.
  void read_at(uint64_t offset, size_t size, char* out, const std::string& what) const;

  // zlib crc32 of the whole file (what a manifest records of each shard),
  // read in 1 MiB pieces. Throws ctmq::Error naming the file on a read error.
  uint32_t file_crc32() const;

 private:
  std::string path_;
  int fd_ = -1;
  ShardHeader header_;
  int64_t file_size_ = 0;
  std::vector<uint64_t> offsets_;
};

}  // namespace ctmq::data
