#include "ctmq/model/memory_format.h"

namespace ctmq::model {

torch::Tensor gradient_in_format(const torch::Tensor& x, torch::MemoryFormat format) {
  if (x.requires_grad()) {
    x.register_hook([format](const torch::Tensor& grad) { return grad.contiguous(format); });
  }
  return x;
}

}  // namespace ctmq::model
