// kernels/cpu/elementwise.cpp: unary, unary backward and broadcasting binary ops on the CPU.
//
// Each op gets its own loop (the switch on the op is outside the loops, and the scalar formula of
// kernels/elementwise_math.h is inlined with the op a constant), inside functions compiled per ISA
// (SANF_CPU_CLONES), so GCC vectorises every op whose formula it can: neg, relu, the scalar ops, the
// binary ops and, in f32, GELU and its derivative, which use the vectorisable exp / erf of
// kernels/cpu/vec_math.h instead of glibc's expf / erff. exp, log, atan, tanh, pow (and everything in f64)
// stay on the libm calls: their accuracy is what the f64 gradient checks and the flow's parity tests rely
// on, and they are not on any hot path.
//
// Threads: kernels/cpu/loops.h's parallel_for hands contiguous pieces to the cloned loops. Binary ops
// first coalesce the operands' dims (loops.h), then either run one flat loop (contiguous, or a stride-0
// scalar) or rows of the innermost remaining dim, walked by for_rows.
#include <type_traits>

#include "kernels/cpu/loops.h"
#include "kernels/cpu/vec_math.h"
#include "kernels/elementwise_math.h"

namespace sanf::kernels::cpu {

namespace {

template <typename T, typename F>
[[gnu::always_inline]] inline void map(const T* x, T* y, int64_t n, F f) {
  for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
}

// y[0, n) = f(x[0, n)) for one op; the op is a constant in each case's loop.
// Every unary op but GELU (which has an f32 fast path): one switch case each, so the op is a compile-time
// constant inside its loop.
#define SANF_PLAIN_UNARY_OPS(X) \
  X(Neg) X(Exp) X(Log) X(Sqrt) X(Atan) X(Tanh) X(Relu) X(AddScalar) X(MulScalar) X(PowScalar)

template <typename T>
[[gnu::always_inline]] inline void unary_loop(UnaryOp op, const T* x, T* y, int64_t n, T alpha) {
  switch (op) {
#define SANF_UNARY_CASE(OP)                                                    \
  case UnaryOp::OP:                                                            \
    map(x, y, n, [alpha](T v) { return unary_value(UnaryOp::OP, v, alpha); }); \
    return;
    SANF_PLAIN_UNARY_OPS(SANF_UNARY_CASE)
#undef SANF_UNARY_CASE
    case UnaryOp::Gelu:
      if constexpr (std::is_same_v<T, float>)
        map(x, y, n, [](float v) { return vmath::gelu_f32(v); });
      else
        map(x, y, n, [alpha](T v) { return unary_value(UnaryOp::Gelu, v, alpha); });
      return;
  }
}

// dx[0, n) = dy * f'(x) for one op.
template <typename T>
[[gnu::always_inline]] inline void unary_backward_loop(UnaryOp op, const T* x, const T* y, const T* dy, T* dx,
                                                       int64_t n, T alpha) {
  switch (op) {
#define SANF_UNARY_CASE(OP)                                                                           \
  case UnaryOp::OP:                                                                                   \
    for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * unary_derivative(UnaryOp::OP, x[i], y[i], alpha); \
    return;
    SANF_PLAIN_UNARY_OPS(SANF_UNARY_CASE)
#undef SANF_UNARY_CASE
    case UnaryOp::Gelu:
      if constexpr (std::is_same_v<T, float>) {
        for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * vmath::gelu_grad_f32(x[i]);
      } else {
        for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * unary_derivative(UnaryOp::Gelu, x[i], y[i], alpha);
      }
      return;
  }
}

// out[i] = a[i * sa] op b[i * sb] for i in [0, n), with the unit-stride and stride-0 cases as their own
// loops (the ones that vectorise).
template <typename T, BinaryOp OP>
[[gnu::always_inline]] inline void binary_loop_op(const T* a, int64_t sa, const T* b, int64_t sb, T* out, int64_t n) {
  if (sa == 1 && sb == 1) {
    for (int64_t i = 0; i < n; ++i) out[i] = binary_value(OP, a[i], b[i]);
  } else if (sa == 1 && sb == 0) {
    const T bv = b[0];
    for (int64_t i = 0; i < n; ++i) out[i] = binary_value(OP, a[i], bv);
  } else if (sa == 0 && sb == 1) {
    const T av = a[0];
    for (int64_t i = 0; i < n; ++i) out[i] = binary_value(OP, av, b[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = binary_value(OP, a[i * sa], b[i * sb]);
  }
}

template <typename T>
[[gnu::always_inline]] inline void binary_loop(BinaryOp op, const T* a, int64_t sa, const T* b, int64_t sb, T* out,
                                               int64_t n) {
  switch (op) {
    case BinaryOp::Add:
      return binary_loop_op<T, BinaryOp::Add>(a, sa, b, sb, out, n);
    case BinaryOp::Sub:
      return binary_loop_op<T, BinaryOp::Sub>(a, sa, b, sb, out, n);
    case BinaryOp::Mul:
      return binary_loop_op<T, BinaryOp::Mul>(a, sa, b, sb, out, n);
    case BinaryOp::Div:
      return binary_loop_op<T, BinaryOp::Div>(a, sa, b, sb, out, n);
  }
}

// The per-ISA entry points (not templates: target_clones wants plain functions).
SANF_CPU_CLONES void unary_run(UnaryOp op, const float* x, float* y, int64_t n, float alpha) {
  unary_loop(op, x, y, n, alpha);
}
SANF_CPU_CLONES void unary_run(UnaryOp op, const double* x, double* y, int64_t n, double alpha) {
  unary_loop(op, x, y, n, alpha);
}
SANF_CPU_CLONES void unary_backward_run(UnaryOp op, const float* x, const float* y, const float* dy, float* dx,
                                        int64_t n, float alpha) {
  unary_backward_loop(op, x, y, dy, dx, n, alpha);
}
SANF_CPU_CLONES void unary_backward_run(UnaryOp op, const double* x, const double* y, const double* dy, double* dx,
                                        int64_t n, double alpha) {
  unary_backward_loop(op, x, y, dy, dx, n, alpha);
}
SANF_CPU_CLONES void binary_run(BinaryOp op, const float* a, int64_t sa, const float* b, int64_t sb, float* out,
                                int64_t n) {
  binary_loop(op, a, sa, b, sb, out, n);
}
SANF_CPU_CLONES void binary_run(BinaryOp op, const double* a, int64_t sa, const double* b, int64_t sb, double* out,
                                int64_t n) {
  binary_loop(op, a, sa, b, sb, out, n);
}

// Elements per thread: the ops that call libm or evaluate a polynomial per element pay for threads sooner.
int64_t unary_grain(UnaryOp op) {
  switch (op) {
    case UnaryOp::Neg:
    case UnaryOp::Relu:
    case UnaryOp::AddScalar:
    case UnaryOp::MulScalar:
      return kGrainCheap;
    default:
      return kGrainHeavy;
  }
}

template <typename T>
void binary_typed(BinaryOp op, const T* a, Layout la, const T* b, Layout lb, T* out, int64_t n) {
  coalesce(la, lb);
  const int nd = la.ndim;
  if (nd <= 1) {  // one flat dim (or a single element)
    const int64_t sa = nd ? la.strides[0] : 1, sb = nd ? lb.strides[0] : 1;
    parallel_for(n, kGrainCheap,
                 [&](int64_t i0, int64_t i1) { binary_run(op, a + i0 * sa, sa, b + i0 * sb, sb, out + i0, i1 - i0); });
    return;
  }
  const int64_t inner = la.shape[nd - 1];
  const int64_t sa = la.strides[nd - 1], sb = lb.strides[nd - 1];
  const int64_t rows = n / inner;
  parallel_for(
      rows, std::max<int64_t>(1, kGrainCheap / inner),
      [&](int64_t r0, int64_t r1) {
        for_rows(la, lb, r0, r1, [&](int64_t r, int64_t oa, int64_t ob) {
          binary_run(op, a + oa, sa, b + ob, sb, out + r * inner, inner);
        });
      },
      1);
}

}  // namespace

void unary(UnaryOp op, DType dt, const void* x, void* y, int64_t n, double alpha) {
  SANF_DISPATCH_FLOAT(dt, unary_name(op), [&] {
    const auto* xs = static_cast<const scalar_t*>(x);
    auto* ys = static_cast<scalar_t*>(y);
    parallel_for(n, unary_grain(op),
                 [&](int64_t i0, int64_t i1) { unary_run(op, xs + i0, ys + i0, i1 - i0, scalar_t(alpha)); });
  });
}

void unary_backward(UnaryOp op, DType dt, const void* x, const void* y, const void* dy, void* dx, int64_t n,
                    double alpha) {
  SANF_DISPATCH_FLOAT(dt, unary_name(op), [&] {
    const auto* xs = static_cast<const scalar_t*>(x);
    const auto* ys = static_cast<const scalar_t*>(y);
    const auto* dys = static_cast<const scalar_t*>(dy);
    auto* dxs = static_cast<scalar_t*>(dx);
    parallel_for(n, unary_grain(op), [&](int64_t i0, int64_t i1) {
      unary_backward_run(op, xs + i0, ys + i0, dys + i0, dxs + i0, i1 - i0, scalar_t(alpha));
    });
  });
}

void binary(BinaryOp op, DType dt, const void* a, Layout la, const void* b, Layout lb, void* out, int64_t n) {
  if (n <= 0) return;
  SANF_DISPATCH_FLOAT(dt, binary_name(op), [&] {
    binary_typed(op, static_cast<const scalar_t*>(a), la, static_cast<const scalar_t*>(b), lb,
                 static_cast<scalar_t*>(out), n);
  });
}

}  // namespace sanf::kernels::cpu
