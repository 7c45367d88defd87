#include "ctmq/data/jpeg_image.h"

#include <turbojpeg.h>

#include <cstring>
#include <memory>
#include <vector>

#include "ctmq/common/atomic_file.h"
#include "ctmq/common/error.h"

namespace ctmq::data {
namespace {

struct HandleDeleter {
  void operator()(void* handle) const { tjDestroy(handle); }
};
using Handle = std::unique_ptr<void, HandleDeleter>;

Handle open_decompressor() {
  Handle handle(tjInitDecompress());
  CTMQ_CHECK(handle != nullptr,
             "libjpeg-turbo cannot start a decompressor: " << tjGetErrorStr2(nullptr));
  return handle;
}

void check_signature(const std::string& bytes, const std::string& path) {
  CTMQ_CHECK(has_jpeg_signature(bytes),
             "image " << path
                      << " is not a JPEG file (bad signature); remove it or convert it to "
                         "JPEG or PNG");
}

const unsigned char* data_of(const std::string& bytes) {
  return reinterpret_cast<const unsigned char*>(bytes.data());
}

struct Header {
  int width = 0;
  int height = 0;
  int colorspace = 0;  // TJCS_*
};

Header read_header(tjhandle handle, const std::string& bytes, const std::string& path) {
  check_signature(bytes, path);
  Header h;
  int subsampling = 0;
  CTMQ_CHECK(tjDecompressHeader3(handle, data_of(bytes), bytes.size(), &h.width, &h.height,
                                 &subsampling, &h.colorspace) == 0,
             "image " << path << " is not a valid JPEG (libjpeg-turbo: " << tjGetErrorStr2(handle)
                      << "); remove or replace it");
  return h;
}

}  // namespace

void read_jpeg_size_bytes(const std::string& bytes, const std::string& path, int64_t& height,
                          int64_t& width) {
  Handle handle = open_decompressor();
  const Header h = read_header(handle.get(), bytes, path);
  height = h.height;
  width = h.width;
}

DecodedImage decode_jpeg_bytes(const std::string& bytes, const std::string& path,
                               int64_t channels) {
  CTMQ_ASSERT(channels == 1 || channels == 3);
  Handle handle = open_decompressor();
  const Header h = read_header(handle.get(), bytes, path);
  const bool cmyk = h.colorspace == TJCS_CMYK || h.colorspace == TJCS_YCCK;
  const bool gray = h.colorspace == TJCS_GRAY;
  const int format = gray ? TJPF_GRAY : (cmyk ? TJPF_CMYK : TJPF_RGB);
  const int source_channels = tjPixelSize[format];
  const size_t plane = static_cast<size_t>(h.width) * static_cast<size_t>(h.height);
  // Bounded memory: a (possibly hostile) header may claim up to 65535^2 px.
  CTMQ_CHECK(static_cast<double>(plane) * source_channels <= double{1 << 30},
             "image " << path << " is not a valid JPEG (libjpeg-turbo: image too large, " << h.width
                      << " x " << h.height << " px, over 1 GiB decoded); "
                      << "remove or replace it");
  // Not zero-filled: tjDecompress2 writes every byte.
  std::unique_ptr<uint8_t[]> interleaved(new uint8_t[plane * source_channels]);
  // Warnings (truncated data, corrupt entropy-coded segments, which libjpeg
  // would paper over with grey) stop the decode and count as errors.
  const int status =
      tjDecompress2(handle.get(), data_of(bytes), bytes.size(), interleaved.get(), h.width,
                    0 /* pitch: width * pixel size */, h.height, format, TJFLAG_STOPONWARNING);
  CTMQ_CHECK(status == 0, "image " << path << " is not a valid JPEG (libjpeg-turbo: "
                                   << tjGetErrorStr2(handle.get()) << "); remove or replace it");

  DecodedImage image;
  image.channels = channels;
  image.height = h.height;
  image.width = h.width;
  image.pixels.resize(plane * channels);
  const uint8_t* in = interleaved.get();
  uint8_t* out = image.pixels.data();
  // One branch-free loop per case (the common RGB -> 3 planes case is most of
  // a loader's time after the decode itself).
  if (gray) {
    for (int64_t c = 0; c < channels; ++c) std::memcpy(out + c * plane, in, plane);
  } else if (!cmyk && channels == 3) {
    uint8_t* r = out;
    uint8_t* g = out + plane;
    uint8_t* b = out + 2 * plane;
    for (size_t p = 0; p < plane; ++p) {
      r[p] = in[3 * p];
      g[p] = in[3 * p + 1];
      b[p] = in[3 * p + 2];
    }
  } else {
    for (size_t p = 0; p < plane; ++p, in += source_channels) {
      int rgb[3];
      if (cmyk) {  // inverted (Adobe) CMYK: stored C' = 255 - C; R = C' K' / 255 rounded
        for (int c = 0; c < 3; ++c) rgb[c] = (in[c] * in[3] + 127) / 255;
      } else {
        for (int c = 0; c < 3; ++c) rgb[c] = in[c];
      }
      if (channels == 3) {
        for (int c = 0; c < 3; ++c) out[c * plane + p] = static_cast<uint8_t>(rgb[c]);
      } else {
        out[p] = static_cast<uint8_t>((299 * rgb[0] + 587 * rgb[1] + 114 * rgb[2] + 500) / 1000);
      }
    }
  }

  return image;
}

std::string encode_jpeg(const DecodedImage& image, int quality, const std::string& what) {
  CTMQ_ASSERT((image.channels == 1 || image.channels == 3) && image.height > 0 && image.width > 0);
  CTMQ_CHECK(quality >= 1 && quality <= 100,
             "JPEG quality " << quality << " is outside 1..100 (--jpeg-quality)");
  struct CompressorDeleter {
    void operator()(void* handle) const { tjDestroy(handle); }
  };
  std::unique_ptr<void, CompressorDeleter> handle(tjInitCompress());
  CTMQ_CHECK(handle != nullptr,
             "libjpeg-turbo cannot start a compressor: " << tjGetErrorStr2(nullptr));
  const size_t plane = static_cast<size_t>(image.height * image.width);
  const bool gray = image.channels == 1;
  std::vector<uint8_t> interleaved(plane * image.channels);
  for (size_t p = 0; p < plane; ++p)
    for (int64_t c = 0; c < image.channels; ++c)
      interleaved[p * image.channels + c] = image.pixels[c * plane + p];
  unsigned char* jpeg = nullptr;
  unsigned long size = 0;
  const int status =
      tjCompress2(handle.get(), interleaved.data(), static_cast<int>(image.width), 0,
                  static_cast<int>(image.height), gray ? TJPF_GRAY : TJPF_RGB, &jpeg, &size,
                  gray ? TJSAMP_GRAY : TJSAMP_420, quality, TJFLAG_ACCURATEDCT);
  std::unique_ptr<unsigned char, decltype(&tjFree)> owned(jpeg, &tjFree);
  CTMQ_CHECK(status == 0, "cannot encode " << what << " as JPEG (libjpeg-turbo: "
                                           << tjGetErrorStr2(handle.get()) << ")");
  return std::string(reinterpret_cast<const char*>(jpeg), size);
}

bool decode_jpeg_interleaved(const std::string& bytes, const std::string& path, int64_t channels,
                             std::vector<uint8_t>& pixels, int64_t& height, int64_t& width) {
  CTMQ_ASSERT(channels == 1 || channels == 3);
  Handle handle = open_decompressor();
  const Header h = read_header(handle.get(), bytes, path);
  const bool gray = h.colorspace == TJCS_GRAY;
  const bool colour = h.colorspace == TJCS_RGB || h.colorspace == TJCS_YCbCr;
  if (!(gray || (colour && channels == 3))) return false;
  const size_t bytes_out =
      static_cast<size_t>(h.width) * static_cast<size_t>(h.height) * static_cast<size_t>(channels);
  CTMQ_CHECK(static_cast<double>(bytes_out) <= double{1 << 30},
             "image " << path << " is not a valid JPEG (libjpeg-turbo: image too large, " << h.width
                      << " x " << h.height << " px, over 1 GiB decoded); "
                      << "remove or replace it");
  pixels.resize(bytes_out);
  const int status =
      tjDecompress2(handle.get(), data_of(bytes), bytes.size(), pixels.data(), h.width, 0, h.height,
                    channels == 3 ? TJPF_RGB : TJPF_GRAY, TJFLAG_STOPONWARNING);
  CTMQ_CHECK(status == 0, "image " << path << " is not a valid JPEG (libjpeg-turbo: "
                                   << tjGetErrorStr2(handle.get()) << "); remove or replace it");
  height = h.height;
  width = h.width;
  return true;
}

DecodedImage decode_jpeg(const std::string& path, int64_t channels) {
  return decode_jpeg_bytes(read_file(path), path, channels);
}

}  // namespace ctmq::data
