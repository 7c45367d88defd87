// Fuzzes the CIFAR binary batch reader (data/cifar_source.cc).
// Input: one flag byte (bit 0: CIFAR-100, else CIFAR-10), then the batch file.
#include "ctmq/data/record_source.h"
#include "fuzz_support.h"
#include "record_source_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const bool cifar100 = data[0] & 1;
  const auto& dir = ctmq::fuzz::scratch();
  ctmq::data::SourceOptions options;
  options.kind = cifar100 ? ctmq::data::SourceKind::kCifar100 : ctmq::data::SourceKind::kCifar10;
  options.inputs = {dir.write("data_batch_1.bin", data + 1, size - 1)};
  ctmq::fuzz::read_source(options);
  return 0;
}
