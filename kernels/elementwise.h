// kernels/elementwise.h: unary maps (with an optional scalar), their derivatives, and binary ops with
// broadcasting.
//
// Unary ops and their derivative (used by unary_backward: dx = dy * f'(x), with y = f(x) also given):
//   Neg        y = -x                          f' = -1
//   Exp        y = exp(x)                      f' = y
//   Log        y = log(x)                      f' = 1/x
//   Sqrt       y = sqrt(x)                     f' = 0.5/y
//   Atan       y = atan(x)                     f' = 1/(1+x^2)
//   Tanh       y = tanh(x)                     f' = 1-y^2
//   Relu       y = max(x, 0)                   f' = x > 0 ? 1 : 0
//   Gelu       y = x * Phi(x) = 0.5 x (1 + erf(x/sqrt2))   f' = Phi(x) + x * phi(x), phi = exp(-x^2/2)/sqrt(2 pi)
//   AddScalar  y = x + alpha                   f' = 1
//   MulScalar  y = x * alpha                   f' = alpha
//   PowScalar  y = x ^ alpha                   f' = alpha * x^(alpha-1)
// Binary ops: out = a (op) b, elementwise over the broadcast shape; a and b arrive as Layouts over the
// output's shape (stride 0 on broadcast dims), out is contiguous.
#pragma once

#include "kernels/dispatch.h"

namespace sanf::kernels {

enum class UnaryOp { Neg, Exp, Log, Sqrt, Atan, Tanh, Relu, Gelu, AddScalar, MulScalar, PowScalar };
enum class BinaryOp { Add, Sub, Mul, Div };
const char* unary_name(UnaryOp op);
const char* binary_name(BinaryOp op);

namespace cpu {
void unary(UnaryOp op, DType dt, const void* x, void* y, int64_t n, double alpha);                   // x, y: (n)
void unary_backward(UnaryOp op, DType dt, const void* x, const void* y, const void* dy, void* dx, int64_t n,
                    double alpha);                                                                  // all (n)
void binary(BinaryOp op, DType dt, const void* a, Layout la, const void* b, Layout lb, void* out, int64_t n);
}  // namespace cpu
namespace cuda {
void unary(UnaryOp op, DType dt, const void* x, void* y, int64_t n, double alpha);
void unary_backward(UnaryOp op, DType dt, const void* x, const void* y, const void* dy, void* dx, int64_t n,
                    double alpha);
void binary(BinaryOp op, DType dt, const void* a, Layout la, const void* b, Layout lb, void* out, int64_t n);
}  // namespace cuda

// x, y: contiguous, same dtype, device and numel.
inline void unary(UnaryOp op, const Tensor& x, const Tensor& y, double alpha = 0.0) {
  SANF_DEVICE_SWITCH(x.device(), unary_name(op),
                     cpu::unary(op, x.dtype(), x.data_ptr(), y.data_ptr(), x.numel(), alpha),
                     cuda::unary(op, x.dtype(), x.data_ptr(), y.data_ptr(), x.numel(), alpha));
}
// x, y, dy, dx: contiguous, same dtype, device and numel. y = f(x) as computed by unary().
inline void unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor& dx,
                           double alpha = 0.0) {
  SANF_DEVICE_SWITCH(
      x.device(), unary_name(op),
      cpu::unary_backward(op, x.dtype(), x.data_ptr(), y.data_ptr(), dy.data_ptr(), dx.data_ptr(), x.numel(), alpha),
      cuda::unary_backward(op, x.dtype(), x.data_ptr(), y.data_ptr(), dy.data_ptr(), dx.data_ptr(), x.numel(), alpha));
}
// a, b: views with out's shape (expanded; any strides); out: contiguous.
inline void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  SANF_DEVICE_SWITCH(
      out.device(), binary_name(op),
      cpu::binary(op, out.dtype(), a.data_ptr(), a.layout(), b.data_ptr(), b.layout(), out.data_ptr(), out.numel()),
      cuda::binary(op, out.dtype(), a.data_ptr(), a.layout(), b.data_ptr(), b.layout(), out.data_ptr(), out.numel()));
}

}  // namespace sanf::kernels
