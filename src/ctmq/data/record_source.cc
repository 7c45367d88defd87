#include "ctmq/data/record_source.h"

#include "ctmq/common/error.h"

namespace ctmq::data {

SourceKind parse_source_kind(const std::string& text) {
  return parse_enum(kSourceKindNames, text, "--format");
}
std::string source_kind_name(SourceKind kind) { return enum_name(kSourceKindNames, kind); }

SizePolicy parse_size_policy(const std::string& text) {
  return parse_enum(kSizePolicyNames, text, "--size-mismatch");
}

std::unique_ptr<RecordSource> open_record_source(const SourceOptions& options) {
  CTMQ_CHECK(!options.inputs.empty(), "no --input given; see ctmq-shard --help");
  CTMQ_CHECK(options.record == RecordKind::kFixed || options.kind == SourceKind::kImageFolder,
             "--record encoded needs --format image-folder (" << source_kind_name(options.kind)
                                                              << " images are small: use --record "
                                                                 "fixed)");
  switch (options.kind) {
    case SourceKind::kIdx:
      return open_idx_source(options);
    case SourceKind::kCifar10:
    case SourceKind::kCifar100:
      return open_cifar_source(options);
    case SourceKind::kImageFolder:
      return open_image_folder_source(options);
  }
  CTMQ_ASSERT(false);
}

}  // namespace ctmq::data
