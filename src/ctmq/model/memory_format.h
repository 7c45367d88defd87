// The two memory formats a network's activations can run in
// (NetworkImpl::set_memory_format), and keeping gradients in them.
#pragma once

#include <torch/torch.h>

#include "ctmq/common/enum_names.h"

namespace ctmq::model {

// "channels-last" (NHWC strides) | "contiguous" (NCHW).
inline constexpr EnumTable<torch::MemoryFormat, 2> kMemoryFormatNames{{
    {torch::MemoryFormat::ChannelsLast, "channels-last"},
    {torch::MemoryFormat::Contiguous, "contiguous"},
}};

// x itself, with a hook that copies the gradient arriving at x into `format`
// before it flows on to x's producers. Some backward ops hand back NCHW
// whatever their input's layout (adaptive_avg_pool2d in LibTorch 1.13); behind
// them every op of a channels-last network would mix layouts, which ATen runs
// 3-9x slower (a strided loop, BatchNorm's generic kernel; docs/performance.md).
// A tensor that does not require grad is returned without a hook.
torch::Tensor gradient_in_format(const torch::Tensor& x, torch::MemoryFormat format);

}  // namespace ctmq::model
