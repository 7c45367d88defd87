// Fuzzes the torch.save reader (model/torch_pickle.cc), which reads weights
// given by --init torchvision:PATH. The reader takes a path, so every input is
// written to a temporary file first.
// Input: one mode byte, then
//   mode even: the whole file (the zip container as found on disk);
//   mode odd:  data.pkl only, packed into a valid zip by this target together
//              with storages data/0 .. data/15 of 4096 bytes each, so that
//              mutations reach the unpickler instead of failing zip checks.
#include <caffe2/serialize/inline_container.h>

#include <string>
#include <vector>

#include "ctmq/model/torch_pickle.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const bool pickle_only = data[0] & 1;
  const auto& dir = ctmq::fuzz::scratch();
  std::string path;
  if (pickle_only) {
    path = (dir.path() / "archive.pt").string();
    dir.remove("archive.pt");
    caffe2::serialize::PyTorchStreamWriter writer(path);
    writer.writeRecord("data.pkl", data + 1, size - 1);
    std::vector<char> storage(4096);
    for (size_t i = 0; i < storage.size(); ++i) storage[i] = static_cast<char>(i * 37 + 11);
    for (int i = 0; i < 16; ++i) {
      writer.writeRecord("data/" + std::to_string(i), storage.data(), storage.size());
    }
    writer.writeEndOfFile();
  } else {
    path = dir.write("archive.pt", data + 1, size - 1);
  }
  ctmq::fuzz::expect_errors_only([&] {
    auto tensors = ctmq::model::read_torch_saved_tensors(path);
    for (auto& [name, tensor] : tensors) {
      // What the importer does next: read every element.
      (void)tensor.contiguous().sum().item<double>();
    }
  });
  return 0;
}
