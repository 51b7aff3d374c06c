// nn/layers.cpp: Linear and LayerNorm construction; Linear's bf16 weight copy.
#include "nn/layers.h"

namespace sanf::nn {

Linear::Linear(int64_t in, int64_t out, bool has_bias, InitOptions init, double std)
    : in_features(in), out_features(out) {
  SANF_CHECK(in > 0 && out > 0, "[Linear] sizes must be positive, got in ", in, ", out ", out);
  weight = init.random ? trunc_normal({out, in}, std, -2.0, 2.0, init.dtype, init.device, init.gen)
                       : zeros({out, in}, init.dtype, init.device);
  register_parameter("weight", weight);
  if (has_bias) {
    bias = zeros({out}, init.dtype, init.device);
    register_parameter("bias", bias);
  }
}

const char* precision_name(MatmulPrecision p) { return p == MatmulPrecision::BF16 ? "bf16" : "f32"; }

Tensor bf16_weight(MatmulPrecision p, const Tensor& weight, const char* module) {
  if (p == MatmulPrecision::F32) return Tensor();
  SANF_CHECK(weight.dtype() == DType::F32, "[", module, "] bf16 precision needs an f32 weight, got ", weight.info());
  NoGradGuard no_grad;  // a converted copy, not part of any graph
  return contiguous(sanf::to(detach(weight), DType::BF16));
}

void Linear::set_precision(MatmulPrecision p) { weight_bf16 = bf16_weight(p, weight, "Linear"); }

LayerNorm::LayerNorm(int64_t dim, double eps_, InitOptions init) : eps(eps_) {
  SANF_CHECK(dim > 0, "[LayerNorm] dim must be positive, got ", dim);
  weight = ones({dim}, init.dtype, init.device);
  bias = zeros({dim}, init.dtype, init.device);
  register_parameter("weight", weight);
  register_parameter("bias", bias);
}

}  // namespace sanf::nn
