// autograd/fast/layernorm_bf16.cpp: layer_norm_bf16(x, w, b, eps), inference only: to(layer_norm(x, w, b, eps),
// BF16) bit for bit, in the layer norm's own pass (kernels/layernorm.h's layernorm_to_bf16): the bf16 ViT's
// norm1 and norm2, whose outputs only feed bf16 GEMMs (qkv, fc1), so the f32 output is never written and
// converted. The differentiable layer norm it reproduces is autograd/ops/layernorm.cpp.
#include "autograd/fast.h"
#include "autograd/ops/common.h"
#include "kernels/layernorm.h"

namespace sanf {

using namespace ops_detail;

Tensor layer_norm_bf16(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  const char* op = "layer_norm_bf16";
  SANF_CHECK(x.defined() && x.dtype() == DType::F32, "[", op, "] needs f32, got ",
             x.defined() ? x.info() : "an undefined tensor");
  const int64_t D = check_layer_norm_args(op, x, weight, bias, eps), rows = x.numel() / D;  // (the same dtype)
  check_inference(op, {x, weight, bias});
  const Tensor xc = dense(x), wc = dense(weight), bc = dense(bias);
  Tensor y = Tensor::empty(x.shape(), DType::BF16, x.device());
  const Tensor mean = Tensor::empty({rows}, DType::F32, x.device());  // written, not needed without a backward
  const Tensor rstd = Tensor::empty({rows}, DType::F32, x.device());
  if (rows > 0) kernels::layernorm_to_bf16(xc, wc, bc, y, mean, rstd, rows, D, eps);
  return y;
}

}  // namespace sanf
