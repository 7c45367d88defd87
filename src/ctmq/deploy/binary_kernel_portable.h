// Internal to the binary convolution: the portable GEMM (step 3 and the
// epilogue of forward(), see binary_conv.cc), popcount(row XOR filter)
// (signed coding) or popcount(row AND NOT filter) (unsigned) in tiles of
// kTileRows rows x kPortableTileCols filters, word layout. Called by
// PackedBinaryConv::forward() for KernelPath::kPortable and CPUs without
// AVX2.
#pragma once

#include <cstdint>

#include "ctmq/deploy/binary_conv_layout.h"

namespace ctmq::deploy::detail {

// rows: [nrows][words + 1] (the gather's spare word), for positions
// [p0, p0 + nrows); filters: [padded_filters][words], padded_filters a
// multiple of kPortableTileCols. Writes the outputs through `ep`.
void gemm_portable(const uint64_t* rows, int64_t nrows, int64_t p0, const uint64_t* filters,
                   int64_t padded_filters, int64_t words, const Epilogue& ep);

}  // namespace ctmq::deploy::detail
