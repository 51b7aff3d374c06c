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
  for (const Tensor* t : {&x, &weight, &bias})
    SANF_CHECK(t->defined() && t->dtype() == DType::F32 && t->device() == x.device(), "[", op,
               "] x, weight and bias must be f32 on one device, got ",
               t->defined() ? t->info() : "an undefined tensor");
  SANF_CHECK(x.dim() > 0 && x.shape().back() > 0, "[", op, "] needs a non-empty last dim, got x ",
             shape_str(x.shape()));
  const int64_t D = x.shape().back(), rows = x.numel() / D;
  SANF_CHECK(weight.shape() == Shape{D} && bias.shape() == Shape{D}, "[", op, "] weight and bias must be ",
             shape_str({D}), " for x ", shape_str(x.shape()), ", got ", shape_str(weight.shape()), " and ",
             shape_str(bias.shape()));
  SANF_CHECK(eps >= 0, "[", op, "] eps must be >= 0, got ", eps);
  check_inference(op, {x, weight, bias});
  const Tensor xc = dense(x), wc = dense(weight), bc = dense(bias);
  Tensor y = Tensor::empty(x.shape(), DType::BF16, x.device());
  const Tensor mean = Tensor::empty({rows}, DType::F32, x.device());  // written, not needed without a backward
  const Tensor rstd = Tensor::empty({rows}, DType::F32, x.device());
  if (rows > 0) kernels::layernorm_to_bf16(xc, wc, bc, y, mean, rstd, rows, D, eps);
  return y;
}

}  // namespace sanf
