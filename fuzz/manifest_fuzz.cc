// Fuzzes the manifest parser (data/manifest.cc): the JSON that names a data
// set's shards. A manifest that parses must survive a round trip through
// manifest_to_json unchanged.
#include <string>

#include "ctmq/data/manifest.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  ctmq::fuzz::expect_errors_only([&] {
    const ctmq::data::Manifest m = ctmq::data::parse_manifest(text, "manifest.json");
    const std::string once = ctmq::data::manifest_to_json(m);
    const std::string twice =
        ctmq::data::manifest_to_json(ctmq::data::parse_manifest(once, "manifest.json"));
    if (once != twice) __builtin_trap();
  });
  return 0;
}
