// resize_region in a build without libswscale (CTMQ_SWSCALE=OFF or not
// found): an image folder that needs resizing is refused by name.
#include "ctmq/common/build_features.h"
#include "ctmq/data/image_transform.h"

namespace ctmq::data {

DecodedImage resize_region(const ImageView&, int64_t, int64_t, int64_t height, int64_t width,
                           int64_t out_height, int64_t out_width) {
  throw_missing_feature(BuildFeature::kSwscale, "resizing a " + std::to_string(width) + " x " +
                                                    std::to_string(height) + " image to " +
                                                    std::to_string(out_width) + " x " +
                                                    std::to_string(out_height));
}

}  // namespace ctmq::data
