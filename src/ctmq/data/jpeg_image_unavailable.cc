// jpeg_image.h in a build without libjpeg-turbo (CTMQ_JPEG=OFF or not
// found): every JPEG is refused by name; PNG and the raw formats still work.
#include "ctmq/common/build_features.h"
#include "ctmq/data/jpeg_image.h"

namespace ctmq::data {

void read_jpeg_size_bytes(const std::string&, const std::string& path, int64_t&, int64_t&) {
  throw_missing_feature(BuildFeature::kJpeg, "reading the JPEG " + path);
}

DecodedImage decode_jpeg_bytes(const std::string&, const std::string& path, int64_t) {
  throw_missing_feature(BuildFeature::kJpeg, "decoding the JPEG " + path);
}

DecodedImage decode_jpeg(const std::string& path, int64_t) {
  throw_missing_feature(BuildFeature::kJpeg, "decoding the JPEG " + path);
}

bool decode_jpeg_interleaved(const std::string&, const std::string& path, int64_t,
                             std::vector<uint8_t>&, int64_t&, int64_t&) {
  throw_missing_feature(BuildFeature::kJpeg, "decoding the JPEG " + path);
}

std::string encode_jpeg(const DecodedImage&, int, const std::string& what) {
  throw_missing_feature(BuildFeature::kJpeg, "encoding " + what + " as JPEG",
                        "ctmq-shard --record encoded keeps PNG files as they are");
}

}  // namespace ctmq::data
