#include "ctmq/quant/quant_linear.h"

#include <cmath>

namespace ctmq::quant {

QuantLinearImpl::QuantLinearImpl(QuantLinearOptions options_) : options(std::move(options_)) {
  reset();
}

void QuantLinearImpl::reset() {
  weight =
      register_parameter("weight", torch::empty({options.out_features(), options.in_features()}));
  // torch.nn.Linear's initialisation.
  torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (options.bias()) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(options.in_features()));
    bias = register_parameter("bias", torch::empty({options.out_features()}));
    torch::nn::init::uniform_(bias, -bound, bound);
  } else {
    bias = torch::Tensor();
  }
  quantizer_.reset(*this, options.quant(), options.out_features(), !options.edge_layer());
}

torch::Tensor QuantLinearImpl::forward(const torch::Tensor& x) {
  return torch::linear(quantizer_.input(x, is_training()), quantizer_.weight(weight), bias);
}

void QuantLinearImpl::set_bit_depths(BitDepths bits) { quantizer_.set_bit_depths(bits, weight); }

void QuantLinearImpl::pretty_print(std::ostream& stream) const {
  stream << "ctmq::QuantLinear(in_features=" << options.in_features()
         << ", out_features=" << options.out_features() << ", bias=" << std::boolalpha
         << options.bias() << (options.edge_layer() ? ", edge" : "") << ", " << quantizer_.tag()
         << ")";
}

}  // namespace ctmq::quant
