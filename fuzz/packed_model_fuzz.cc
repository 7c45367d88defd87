// Fuzzes the packed model reader (deploy/packed_format.cc) and the checks of
// the inference network built from it (deploy/packed_resnet.cc); a model that
// passes them must run on a small input.
// Input: one flag byte, then the file. The footer's CRC-32 would stop almost
// every mutation at the first check, so with bit 0 set the target seals the
// bytes itself (common/sealed_file.h, magic CTMQPACK, version 1 + bit 1).
#include <string>

#include "ctmq/common/sealed_file.h"
#include "ctmq/deploy/packed_format.h"
#include "ctmq/deploy/packed_resnet.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::string bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] & 1)
    bytes =
        ctmq::seal(std::move(bytes), {"packed model file", "CTMQPACK"}, 1 + ((data[0] >> 1) & 1));
  ctmq::fuzz::expect_errors_only([&] {
    ctmq::deploy::PackedModel model = ctmq::deploy::decode_packed(bytes, "model.packed");
    const ctmq::deploy::PackedResNet net(std::move(model), "model.packed");
    net.forward(torch::zeros({1, net.options().in_channels, 9, 9}),
                ctmq::deploy::KernelPath::kPortable);
  });
  return 0;
}
