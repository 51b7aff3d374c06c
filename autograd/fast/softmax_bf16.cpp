// autograd/fast/softmax_bf16.cpp: softmax_bf16(x, dim), inference only: to(softmax(x, dim), BF16) bit for
// bit, in one kernel pass (kernels/softmax.h's softmax_to_bf16). It makes the bf16 attention's weights,
// which its A v product takes as bf16 operands (autograd/fast/attention_bf16.cpp). The differentiable
// softmax it reproduces is autograd/ops/softmax.cpp.
#include "autograd/fast.h"
#include "autograd/ops/common.h"
#include "kernels/softmax.h"

namespace sanf {

using namespace ops_detail;

Tensor softmax_bf16(const Tensor& x, int dim) {
  const char* name = "softmax_bf16";
  SANF_CHECK(x.defined() && x.dtype() == DType::F32, "[", name, "] needs f32, got ",
             x.defined() ? x.info() : std::string("an undefined tensor"));
  SANF_CHECK(x.dim() > 0, "[", name, "] needs at least one dim, got a scalar ", shape_str(x.shape()));
  check_inference(name, {x});
  const int d = normalize_dim(dim, x.dim(), name);
  Tensor block = dense(swap_with_last(x, d));  // (rows, cols), cols = size of dim d
  const int64_t cols = x.shape()[size_t(d)], rows = cols ? x.numel() / cols : 0;
  Tensor yblock = Tensor::empty(block.shape(), DType::BF16, x.device());
  if (x.numel() > 0) kernels::softmax_to_bf16(block, yblock, rows, cols);
  return swap_with_last(yblock, d);
}

}  // namespace sanf
