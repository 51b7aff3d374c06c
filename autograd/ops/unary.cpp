// autograd/ops/unary.cpp: elementwise maps of one tensor (with an optional scalar).
//
// Forward: y = f(x) by kernels::unary. Backward: dx = dy * f'(x) by kernels::unary_backward, which is
// given both x and y so that f' can reuse the output (exp, tanh, sqrt). The formulas are tabled in
// kernels/elementwise.h.
#include "autograd/ops/common.h"
#include "kernels/elementwise.h"

namespace sanf {

using namespace ops_detail;
using kernels::UnaryOp;

namespace {
Tensor unary_op(UnaryOp op, const Tensor& x, double alpha = 0.0) {
  const char* name = kernels::unary_name(op);
  check_float(name, x);
  Tensor xc = dense(x);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  kernels::unary(op, xc, y, alpha);
  return record(name, y, {x}, [op, alpha, xc, yc = detach(y)](const Tensor& g, const std::vector<bool>&) {
    Tensor dx = Tensor::empty(xc.shape(), xc.dtype(), xc.device());
    kernels::unary_backward(op, xc, yc, dense(g), dx, alpha);
    return std::vector<Tensor>{dx};
  });
}
}  // namespace

Tensor neg(const Tensor& x) { return unary_op(UnaryOp::Neg, x); }
Tensor exp(const Tensor& x) { return unary_op(UnaryOp::Exp, x); }
Tensor log(const Tensor& x) { return unary_op(UnaryOp::Log, x); }
Tensor sqrt(const Tensor& x) { return unary_op(UnaryOp::Sqrt, x); }
Tensor atan(const Tensor& x) { return unary_op(UnaryOp::Atan, x); }
Tensor tanh(const Tensor& x) { return unary_op(UnaryOp::Tanh, x); }
Tensor relu(const Tensor& x) { return unary_op(UnaryOp::Relu, x); }
Tensor gelu(const Tensor& x) { return unary_op(UnaryOp::Gelu, x); }
Tensor add(const Tensor& x, double s) { return unary_op(UnaryOp::AddScalar, x, s); }
Tensor mul(const Tensor& x, double s) { return unary_op(UnaryOp::MulScalar, x, s); }
Tensor pow(const Tensor& x, double p) { return unary_op(UnaryOp::PowScalar, x, p); }
Tensor square(const Tensor& x) { return mul(x, x); }

}  // namespace sanf
