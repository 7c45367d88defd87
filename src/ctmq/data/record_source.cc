#include "ctmq/data/record_source.h"

#include "ctmq/common/error.h"

namespace ctmq::data {

SourceKind parse_source_kind(const std::string& text) {
  if (text == "idx") return SourceKind::kIdx;
  if (text == "cifar10") return SourceKind::kCifar10;
  if (text == "cifar100") return SourceKind::kCifar100;
  if (text == "image-folder") return SourceKind::kImageFolder;
  CTMQ_FAIL("--format '" << text << "' is unknown; use idx, cifar10, cifar100 or image-folder");
}

std::string source_kind_name(SourceKind kind) {
  switch (kind) {
    case SourceKind::kIdx:
      return "idx";
    case SourceKind::kCifar10:
      return "cifar10";
    case SourceKind::kCifar100:
      return "cifar100";
    case SourceKind::kImageFolder:
      return "image-folder";
  }
  CTMQ_ASSERT(false);
}

SizePolicy parse_size_policy(const std::string& text) {
  if (text == "reject") return SizePolicy::kReject;
  if (text == "resize") return SizePolicy::kResize;
  CTMQ_FAIL("--size-mismatch '" << text << "' is unknown; use reject or resize");
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
