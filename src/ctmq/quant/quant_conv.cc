#include "ctmq/quant/quant_conv.h"

#include <cmath>

namespace ctmq::quant {

QuantConv2dImpl::QuantConv2dImpl(QuantConv2dOptions options_) : options(std::move(options_)) {
  reset();
}

void QuantConv2dImpl::reset() {
  const int64_t k = options.kernel_size();
  weight = register_parameter("weight",
                              torch::empty({options.out_channels(), options.in_channels(), k, k}));
  // torch.nn.Conv2d's initialisation.
  torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (options.bias()) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(options.in_channels() * k * k));
    bias = register_parameter("bias", torch::empty({options.out_channels()}));
    torch::nn::init::uniform_(bias, -bound, bound);
  } else {
    bias = torch::Tensor();
  }
  quantizer_.reset(*this, options.quant(), options.out_channels(), !options.edge_layer());
}

torch::Tensor QuantConv2dImpl::forward(const torch::Tensor& x) {
  return torch::conv2d(quantizer_.input(x, is_training()), quantizer_.weight(weight), bias,
                       options.stride(), options.padding());
}

void QuantConv2dImpl::set_bit_depths(BitDepths bits) { quantizer_.set_bit_depths(bits, weight); }

void QuantConv2dImpl::pretty_print(std::ostream& stream) const {
  stream << "ctmq::QuantConv2d(" << options.in_channels() << ", " << options.out_channels()
         << ", kernel_size=" << options.kernel_size() << ", stride=" << options.stride()
         << ", padding=" << options.padding() << ", bias=" << std::boolalpha << options.bias()
         << (options.edge_layer() ? ", edge" : "") << ", " << quantizer_.tag() << ")";
}

}  // namespace ctmq::quant
