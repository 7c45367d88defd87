// Input data sets as a stream of labelled images, the input of ctmq-shard.
//
// A RecordSource knows its record count, image shape and class names when it
// is opened (from file headers or a directory listing, without decoding the
// images), so the shard plan is fixed before any pixel is read. Records are
// then streamed in input order from any start position: memory stays bounded
// by one record plus buffers, whatever the data set's size.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ctmq/common/enum_names.h"
#include "ctmq/data/shard_format.h"

namespace ctmq::data {

enum class SourceKind { kIdx, kCifar10, kCifar100, kImageFolder };
inline constexpr EnumTable<SourceKind, 4> kSourceKindNames{{
    {SourceKind::kIdx, "idx"},
    {SourceKind::kCifar10, "cifar10"},
    {SourceKind::kCifar100, "cifar100"},
    {SourceKind::kImageFolder, "image-folder"},
}};
// What to do with an image whose size differs from the data set's size.
enum class SizePolicy { kReject, kResize };
inline constexpr EnumTable<SizePolicy, 2> kSizePolicyNames{{
    {SizePolicy::kReject, "reject"},
    {SizePolicy::kResize, "resize"},
}};

SourceKind parse_source_kind(const std::string& text);  // "idx", "cifar10", ...
std::string source_kind_name(SourceKind kind);
SizePolicy parse_size_policy(const std::string& text);  // "reject", "resize"

// ctmq-shard --record encoded's policy (docs/shard-format.md, version 2): an
// image whose shorter side is at most max_side keeps its file's bytes; a
// larger one is resized so its shorter side is max_side and re-encoded as JPEG
// at jpeg_quality. max_side 0 keeps every file.
struct EncodingPolicy {
  int64_t max_side = 256;  // px, >= 0 (FFCV's ImageNet setting; 160 for its fastest runs)
  int jpeg_quality = 90;   // 1..100
};

struct SourceOptions {
  SourceKind kind = SourceKind::kIdx;
  // idx: the images file and the labels file (either order; gzipped or not).
  // cifar10/cifar100: the binary batch files, in order.
  // image-folder: one root directory holding CLASS/*.png, *.jpg, *.jpeg.
  std::vector<std::string> inputs;
  // Replaces the default class names (IDX: "0".."K-1"; CIFAR: batches.meta.txt
  // or fine_label_names.txt next to the first batch when present).
  std::vector<std::string> class_names;
  // image-folder only: channels of the output (1 = gray, 3 = RGB; alpha is
  // dropped), and the output size (0 = the first image's size).
  int64_t channels = 3;
  int64_t height = 0;
  int64_t width = 0;
  SizePolicy size_policy = SizePolicy::kReject;
  // kEncoded (image-folder only): records keep encoded images, and
  // height x width (required) is the size the reader delivers.
  RecordKind record = RecordKind::kFixed;
  EncodingPolicy encoding;
};

struct SourceRecord {
  int32_t label = 0;
  std::vector<uint8_t> pixels;  // planar CHW, shape().pixels() bytes
  // RecordKind::kEncoded only: the image file to store (PNG or JPEG bytes);
  // `pixels` then holds its decode, channels x height x width, for the
  // data set's statistics.
  std::string encoded;
  int64_t height = 0;
  int64_t width = 0;
};

class RecordSource {
 public:
  virtual ~RecordSource() = default;
  // kFixed: every record's shape; kEncoded: the shape the reader delivers.
  virtual ImageShape shape() const = 0;
  virtual int64_t count() const = 0;
  virtual const std::vector<std::string>& class_names() const = 0;
  // A JSON object describing the inputs (for the manifest's "source").
  virtual std::string describe_json() const = 0;
  // Positions the stream so that the next read() returns record `index`.
  virtual void seek(int64_t index) = 0;
  // Reads the next record; throws ctmq::Error naming the file and record.
  virtual void read(SourceRecord& record) = 0;
};

// Opens the inputs and reads their headers / listing. Throws ctmq::Error
// naming the file when an input is missing or malformed.
std::unique_ptr<RecordSource> open_record_source(const SourceOptions& options);

// Implementations (one file each).
std::unique_ptr<RecordSource> open_idx_source(const SourceOptions& options);
std::unique_ptr<RecordSource> open_cifar_source(const SourceOptions& options);
std::unique_ptr<RecordSource> open_image_folder_source(const SourceOptions& options);

}  // namespace ctmq::data
