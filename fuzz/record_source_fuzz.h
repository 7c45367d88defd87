// Shared by the record-source fuzz targets (idx_fuzz.cc, cifar_fuzz.cc): how
// they read a source once its files are written.
#pragma once

#include <algorithm>
#include <cstdint>

#include "ctmq/data/record_source.h"
#include "fuzz_support.h"

namespace ctmq::fuzz {

// Opens the record source of `options` and reads it with ctmq-shard's writers'
// two access patterns: the first records in order (at most 8), then the last
// one after a seek. Bad input may only raise ctmq::Error (expect_errors_only).
// Records of more than `max_pixels` pixels are legal (up to 1 GiB) but would
// make one execution slow: such a source is opened (its headers parsed) and
// not read.
inline void read_source(const data::SourceOptions& options, int64_t max_pixels = int64_t{1} << 20) {
  expect_errors_only([&] {
    auto source = data::open_record_source(options);
    if (source->shape().pixels() > max_pixels) return;
    data::SourceRecord record;
    const int64_t count = source->count();
    for (int64_t i = 0; i < std::min<int64_t>(count, 8); ++i) source->read(record);
    if (count > 0) {
      source->seek(count - 1);
      source->read(record);
    }
  });
}

}  // namespace ctmq::fuzz
