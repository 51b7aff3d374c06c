// kernels/cpu/elementwise.cpp: unary, unary backward and broadcasting binary ops on the CPU.
//
// The op switch sits inside the loop; the compiler unswitches it (the op is loop-invariant), so each op
// still gets its own vectorised loop. Binary ops with both inputs contiguous take a flat loop; otherwise
// the last dim is the inner loop and the outer dims are walked with an index decomposition per row.
#include "kernels/elementwise_math.h"

namespace sanf::kernels::cpu {

namespace {
constexpr int64_t kParallelMin = 1 << 15;  // below this, threads cost more than they save

template <typename T>
void unary_typed(UnaryOp op, const T* x, T* y, int64_t n, T alpha) {
#pragma omp parallel for if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = unary_value(op, x[i], alpha);
}

template <typename T>
void unary_backward_typed(UnaryOp op, const T* x, const T* y, const T* dy, T* dx, int64_t n, T alpha) {
#pragma omp parallel for if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * unary_derivative(op, x[i], y[i], alpha);
}

template <typename T>
void binary_typed(BinaryOp op, const T* a, const Layout& la, const T* b, const Layout& lb, T* out, int64_t n) {
  if (layout_is_contiguous(la) && layout_is_contiguous(lb)) {
#pragma omp parallel for if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) out[i] = binary_value(op, a[i], b[i]);
    return;
  }
  const int nd = la.ndim;
  const int64_t inner = nd ? la.shape[nd - 1] : 1;
  const int64_t sa = nd ? la.strides[nd - 1] : 0, sb = nd ? lb.strides[nd - 1] : 0;
  const int64_t rows = inner ? n / inner : 0;
#pragma omp parallel for if (n > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    int64_t rem = r, oa = 0, ob = 0;
    for (int d = nd - 2; d >= 0; --d) {
      int64_t i = rem % la.shape[d];
      rem /= la.shape[d];
      oa += i * la.strides[d];
      ob += i * lb.strides[d];
    }
    T* o = out + r * inner;
    for (int64_t i = 0; i < inner; ++i) o[i] = binary_value(op, a[oa + i * sa], b[ob + i * sb]);
  }
}
}  // namespace

void unary(UnaryOp op, DType dt, const void* x, void* y, int64_t n, double alpha) {
  SANF_DISPATCH_FLOAT(dt, unary_name(op), [&] {
    unary_typed(op, static_cast<const scalar_t*>(x), static_cast<scalar_t*>(y), n, scalar_t(alpha));
  });
}

void unary_backward(UnaryOp op, DType dt, const void* x, const void* y, const void* dy, void* dx, int64_t n,
                    double alpha) {
  SANF_DISPATCH_FLOAT(dt, unary_name(op), [&] {
    unary_backward_typed(op, static_cast<const scalar_t*>(x), static_cast<const scalar_t*>(y),
                         static_cast<const scalar_t*>(dy), static_cast<scalar_t*>(dx), n, scalar_t(alpha));
  });
}

void binary(BinaryOp op, DType dt, const void* a, Layout la, const void* b, Layout lb, void* out, int64_t n) {
  SANF_DISPATCH_FLOAT(dt, binary_name(op), [&] {
    binary_typed(op, static_cast<const scalar_t*>(a), la, static_cast<const scalar_t*>(b), lb,
                 static_cast<scalar_t*>(out), n);
  });
}

}  // namespace sanf::kernels::cpu
