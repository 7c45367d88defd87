// Fuzzes the IDX reader (data/idx_source.cc): an images file and a labels
// file, gzipped or plain, opened together as `ctmq-shard --format idx` does.
// Input: a 4-byte little-endian length N, then N bytes of the images file,
// then the labels file (N is clamped to what is there).
#include <algorithm>

#include "ctmq/common/byte_coding.h"
#include "ctmq/data/record_source.h"
#include "fuzz_support.h"
#include "record_source_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  const uint32_t images_size = ctmq::decode_le32(data);
  data += 4;
  size -= 4;
  const size_t n = std::min<size_t>(images_size, size);
  const auto& dir = ctmq::fuzz::scratch();
  ctmq::data::SourceOptions options;
  options.kind = ctmq::data::SourceKind::kIdx;
  options.inputs = {dir.write("images.idx", data, n), dir.write("labels.idx", data + n, size - n)};
  ctmq::fuzz::read_source(options);
  return 0;
}
