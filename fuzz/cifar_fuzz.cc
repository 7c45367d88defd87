// Fuzzes the CIFAR binary batch reader (data/cifar_source.cc).
// Input: one flag byte (bit 0: CIFAR-100, else CIFAR-10), then the batch file.
#include <algorithm>

#include "ctmq/data/record_source.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const bool cifar100 = data[0] & 1;
  const auto& dir = ctmq::fuzz::scratch();
  ctmq::data::SourceOptions options;
  options.kind = cifar100 ? ctmq::data::SourceKind::kCifar100 : ctmq::data::SourceKind::kCifar10;
  options.inputs = {dir.write("data_batch_1.bin", data + 1, size - 1)};
  ctmq::fuzz::expect_errors_only([&] {
    auto source = ctmq::data::open_record_source(options);
    ctmq::data::SourceRecord record;
    const int64_t count = source->count();
    for (int64_t i = 0; i < std::min<int64_t>(count, 8); ++i) source->read(record);
    if (count > 0) {
      source->seek(count - 1);
      source->read(record);
    }
  });
  return 0;
}
