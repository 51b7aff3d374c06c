// kernels/elementwise_math.h: the scalar math of every elementwise op, written once for the CPU and CUDA
// kernels (host + device functions). The table of formulas is in kernels/elementwise.h.
#pragma once

#include <cmath>

#include "kernels/elementwise.h"

namespace sanf::kernels {

template <typename T>
SANF_HD T unary_value(UnaryOp op, T x, T alpha) {
  switch (op) {
    case UnaryOp::Neg: return -x;
    case UnaryOp::Exp: return std::exp(x);
    case UnaryOp::Log: return std::log(x);
    case UnaryOp::Sqrt: return std::sqrt(x);
    case UnaryOp::Atan: return std::atan(x);
    case UnaryOp::Tanh: return std::tanh(x);
    case UnaryOp::Relu: return x > T(0) ? x : T(0);
    // x Phi(x) with Phi(x) = erfc(-x / sqrt 2) / 2: the same as (1 + erf(x / sqrt 2)) / 2, without the
    // cancellation that leaves no correct digit of the f32 result below x = -5 (the CUDA f32 kernels use
    // this; the CPU's f32 path has its own vectorised form, kernels/cpu/vec_math.h).
    case UnaryOp::Gelu: return T(0.5) * x * std::erfc(-x * T(0.70710678118654752440));
    case UnaryOp::AddScalar: return x + alpha;
    case UnaryOp::MulScalar: return x * alpha;
    case UnaryOp::PowScalar: return std::pow(x, alpha);
  }
  return x;
}

// f'(x), given x and y = f(x).
template <typename T>
SANF_HD T unary_derivative(UnaryOp op, T x, T y, T alpha) {
  switch (op) {
    case UnaryOp::Neg: return T(-1);
    case UnaryOp::Exp: return y;
    case UnaryOp::Log: return T(1) / x;
    case UnaryOp::Sqrt: return T(0.5) / y;
    case UnaryOp::Atan: return T(1) / (T(1) + x * x);
    case UnaryOp::Tanh: return T(1) - y * y;
    case UnaryOp::Relu: return x > T(0) ? T(1) : T(0);
    case UnaryOp::Gelu: {
      const T cdf = T(0.5) * std::erfc(-x * T(0.70710678118654752440));
      const T pdf = std::exp(T(-0.5) * x * x) * T(0.39894228040143267794);  // 1/sqrt(2 pi)
      return cdf + x * pdf;
    }
    case UnaryOp::AddScalar: return T(1);
    case UnaryOp::MulScalar: return alpha;
    case UnaryOp::PowScalar: return alpha * std::pow(x, alpha - T(1));
  }
  return T(0);
}

template <typename T>
SANF_HD T binary_value(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::Add: return a + b;
    case BinaryOp::Sub: return a - b;
    case BinaryOp::Mul: return a * b;
    case BinaryOp::Div: return a / b;
  }
  return a;
}

}  // namespace sanf::kernels
