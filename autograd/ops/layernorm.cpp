// autograd/ops/layernorm.cpp: layer norm over the last dim, with a learned scale and shift.
//
// x: (..., D), weight: (D), bias: (D). Each row of D values (every leading index) is normalised on its own:
//   mean = sum_j x_j / D,  var = sum_j (x_j - mean)^2 / D  (biased, as PyTorch),  rstd = 1 / sqrt(var + eps)
//   xhat_j = (x_j - mean) * rstd,  y_j = xhat_j * weight_j + bias_j
// Backward, with g_j = dy_j * weight_j and means over the row:
//   dx_j      = rstd * (g_j - mean_k(g_k) - xhat_j * mean_k(g_k * xhat_k))
//   dweight_j = sum over rows of dy_j * xhat_j,   dbias_j = sum over rows of dy_j
// The dx formula is the derivative of xhat through both mean and rstd: the two subtracted terms remove the
// components of g along the constant vector (mean) and along xhat (scale). The forward kernel saves mean
// and rstd per row so the backward does not recompute the statistics; the kernel writes all three
// gradients in one pass over dy.
#include "kernels/layernorm.h"
#include "autograd/ops/common.h"

namespace sanf {

using namespace ops_detail;

int64_t ops_detail::check_layer_norm_args(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias,
                                          double eps) {
  check_float(op, x);
  check_same(op, x, weight);
  check_same(op, x, bias);
  SANF_CHECK(x.dim() > 0 && x.shape().back() > 0, "[", op, "] needs a non-empty last dim, got x ",
             shape_str(x.shape()));
  const int64_t D = x.shape().back();
  SANF_CHECK(weight.shape() == Shape{D}, "[", op, "] weight must be ", shape_str({D}), " for x ",
             shape_str(x.shape()), ", got ", shape_str(weight.shape()));
  SANF_CHECK(bias.shape() == Shape{D}, "[", op, "] bias must be ", shape_str({D}), " for x ", shape_str(x.shape()),
             ", got ", shape_str(bias.shape()));
  SANF_CHECK(eps >= 0, "[", op, "] eps must be >= 0, got ", eps);
  return D;
}

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  const int64_t D = check_layer_norm_args("layer_norm", x, weight, bias, eps), rows = x.numel() / D;

  Tensor xc = dense(x), wc = dense(weight), bc = dense(bias);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor mean = Tensor::empty({rows}, x.dtype(), x.device());
  Tensor rstd = Tensor::empty({rows}, x.dtype(), x.device());
  if (rows > 0) kernels::layernorm(xc, wc, bc, y, mean, rstd, rows, D, eps);
  return record(
      "layer_norm", y, {x, weight, bias},
      [xc = detach(xc), wc = detach(wc), mean, rstd, rows, D](const Tensor& g, const std::vector<bool>& needs) {
        Tensor dx = Tensor::empty(xc.shape(), xc.dtype(), xc.device());
        Tensor dw = Tensor::empty({D}, xc.dtype(), xc.device());
        Tensor db = Tensor::empty({D}, xc.dtype(), xc.device());
        if (rows > 0) {
          kernels::layernorm_backward(xc, wc, mean, rstd, dense(g), dx, dw, db, rows, D);
        } else {  // no rows: nothing to sum
          kernels::fill(dw, 0.0);
          kernels::fill(db, 0.0);
        }
        return std::vector<Tensor>{needs[0] ? dx : Tensor(), needs[1] ? dw : Tensor(), needs[2] ? db : Tensor()};
      });
}

}  // namespace sanf
