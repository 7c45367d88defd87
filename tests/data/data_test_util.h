// Helpers shared by the data layer's tests: small real inputs on disk.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>

#include "ctmq/data/shard_builder.h"
#include "test_support.h"

namespace ctmq::data::test {

inline void write_big_endian(std::ofstream& out, uint32_t v) {
  const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 8), static_cast<char>(v)};
  out.write(b, 4);
}

// Writes the first `count` Fashion-MNIST training images and labels as plain
// (not gzipped) IDX files DIR/images.idx and DIR/labels.idx.
inline ctmq::testing::LabelledImages write_fashion_idx(const std::string& dir, int64_t count) {
  auto data = ctmq::testing::load_fashion_mnist_train(count);
  std::ofstream images(dir + "/images.idx", std::ios::binary);
  write_big_endian(images, 0x803);
  write_big_endian(images, static_cast<uint32_t>(count));
  write_big_endian(images, 28);
  write_big_endian(images, 28);
  images.write(reinterpret_cast<const char*>(data.images.data_ptr<uint8_t>()), count * 784);
  std::ofstream labels(dir + "/labels.idx", std::ios::binary);
  write_big_endian(labels, 0x801);
  write_big_endian(labels, static_cast<uint32_t>(count));
  auto l8 = data.labels.to(torch::kUInt8).contiguous();
  labels.write(reinterpret_cast<const char*>(l8.data_ptr<uint8_t>()), count);
  return data;
}

inline ShardBuildOptions idx_build(const std::string& in_dir, const std::string& out_dir,
                                   int64_t records_per_shard) {
  ShardBuildOptions o;
  o.source.kind = SourceKind::kIdx;
  o.source.inputs = {in_dir + "/images.idx", in_dir + "/labels.idx"};
  o.output_dir = out_dir;
  o.records_per_shard = records_per_shard;
  return o;
}

}  // namespace ctmq::data::test
