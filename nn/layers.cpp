// nn/layers.cpp: Linear and LayerNorm construction.
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

LayerNorm::LayerNorm(int64_t dim, double eps_, InitOptions init) : eps(eps_) {
  SANF_CHECK(dim > 0, "[LayerNorm] dim must be positive, got ", dim);
  weight = ones({dim}, init.dtype, init.device);
  bias = zeros({dim}, init.dtype, init.device);
  register_parameter("weight", weight);
  register_parameter("bias", bias);
}

}  // namespace sanf::nn
