// autograd/ops/pool.cpp: adaptive average pooling of a token grid (a ViT's patch tokens).
//
// tokens (B, Gh*Gw, D), the Gh x Gw grid in row-major order -> (B, gh*gw, D). Output cell (oy, ox) is the
// mean of the tokens in grid rows [floor(oy*Gh/gh), ceil((oy+1)*Gh/gh)) and the matching columns, exactly
// PyTorch's adaptive_avg_pool2d on the (B, D, Gh, Gw) image of the tokens. The map is linear, so the
// backward is its transpose: each output gradient is spread evenly over its cell's tokens, and a token in
// two overlapping cells (when gh does not divide Gh) receives both shares.
#include "kernels/pool.h"
#include "autograd/ops/common.h"

namespace sanf {

using namespace ops_detail;

Tensor adaptive_avg_pool_tokens(const Tensor& tokens, int64_t Gh, int64_t Gw, int64_t gh, int64_t gw) {
  check_float("adaptive_avg_pool_tokens", tokens);
  SANF_CHECK(tokens.dim() == 3, "[adaptive_avg_pool_tokens] tokens must be (B, N, D), got ", shape_str(tokens.shape()));
  SANF_CHECK(Gh > 0 && Gw > 0 && gh > 0 && gw > 0, "[adaptive_avg_pool_tokens] grid sizes must be positive, got ", Gh,
             " x ", Gw, " -> ", gh, " x ", gw);
  const int64_t B = tokens.size(0), N = tokens.size(1), D = tokens.size(2);
  SANF_CHECK(N == Gh * Gw, "[adaptive_avg_pool_tokens] ", N, " tokens in ", shape_str(tokens.shape()),
             " do not form a ", Gh, " x ", Gw, " grid (", Gh * Gw, " tokens)");
  Tensor out = Tensor::empty({B, gh * gw, D}, tokens.dtype(), tokens.device());
  if (out.numel() > 0) kernels::avg_pool_tokens(dense(tokens), out, B, Gh, Gw, gh, gw, D);
  return record("adaptive_avg_pool_tokens", out, {tokens},
                [in = tokens.shape(), B, Gh, Gw, gh, gw, D](const Tensor& g, const std::vector<bool>&) {
                  Tensor dx = Tensor::empty(in, g.dtype(), g.device());
                  if (dx.numel() > 0) kernels::avg_pool_tokens_backward(dense(g), dx, B, Gh, Gw, gh, gw, D);
                  return std::vector<Tensor>{dx};
                });
}

}  // namespace sanf
