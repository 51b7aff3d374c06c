// autograd/ops/softmax.cpp: softmax and log_softmax along one dim.
//
//   softmax(x)_j     = exp(x_j) / sum_k exp(x_k)       dx_j = y_j * (dy_j - sum_k dy_k y_k)
//   log_softmax(x)_j = x_j - log sum_k exp(x_k)        dx_j = dy_j - exp(y_j) * sum_k dy_k
// (the kernel subtracts the row maximum first; see kernels/softmax.h). Both backwards need only the output
// y, so that is what the closure keeps.
//
// The kernel works on the last axis of a contiguous (rows, cols) block. For another dim the input is viewed
// with that dim swapped with the last one and made contiguous (one copy); the result is that block viewed
// with the two dims swapped back, so the output of a softmax over a middle dim is a non-contiguous view.
#include "kernels/softmax.h"
#include "autograd/ops/common.h"

namespace sanf {

using namespace ops_detail;

namespace {

Tensor softmax_op(const Tensor& x, int dim, bool log) {
  const char* name = log ? "log_softmax" : "softmax";
  check_float(name, x);
  SANF_CHECK(x.dim() > 0, "[", name, "] needs at least one dim, got a scalar ", shape_str(x.shape()));
  const int d = normalize_dim(dim, x.dim(), name);
  Tensor block = dense(swap_with_last(x, d));  // (rows, cols), cols = size of dim d
  const int64_t cols = x.shape()[size_t(d)], rows = cols ? x.numel() / cols : 0;
  Tensor yblock = Tensor::empty(block.shape(), x.dtype(), x.device());
  if (x.numel() > 0) kernels::softmax(block, yblock, rows, cols, log);
  Tensor y = swap_with_last(yblock, d);
  return record(name, y, {x}, [d, rows, cols, log, yb = detach(yblock)](const Tensor& g, const std::vector<bool>&) {
    Tensor dyblock = dense(swap_with_last(g, d));
    Tensor dxblock = Tensor::empty(yb.shape(), yb.dtype(), yb.device());
    if (yb.numel() > 0) kernels::softmax_backward(yb, dyblock, dxblock, rows, cols, log);
    return std::vector<Tensor>{swap_with_last(dxblock, d)};
  });
}
}  // namespace

Tensor softmax(const Tensor& x, int dim) { return softmax_op(x, dim, false); }

Tensor log_softmax(const Tensor& x, int dim) { return softmax_op(x, dim, true); }

}  // namespace sanf
