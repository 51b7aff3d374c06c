// kernels/cpu/softmax.cpp: softmax and log-softmax over the rows of a contiguous (rows, cols) block.
//
// One row at a time (rows in parallel), three passes over the row: the maximum m, then
// s = sum_k exp(x_k - m), then the outputs. Subtracting m makes every exponent <= 0, so nothing overflows
// and the largest term is exactly 1 (s >= 1, log s is safe). s and the backward's dot products are
// accumulated in double, also for f32, like the sums in reduce.cpp.
//   softmax:      y_j = exp(x_j - m) / s
//   log_softmax:  y_j = x_j - m - log(s)
// Backward, from the saved output y (see kernels/softmax.h):
//   softmax:      dx_j = y_j * (dy_j - sum_k dy_k y_k)
//   log_softmax:  dx_j = dy_j - exp(y_j) * sum_k dy_k
#include <cmath>
#include <limits>

#include "kernels/softmax.h"

namespace sanf::kernels::cpu {

namespace {
// Rows in parallel once the block is big enough to pay for the threads.
constexpr int64_t kParallelElems = int64_t(1) << 15;

template <typename T>
void softmax_typed(const T* x, T* y, int64_t rows, int64_t cols, bool log) {
#pragma omp parallel for if (rows * cols > kParallelElems)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    T m = -std::numeric_limits<T>::infinity();
    for (int64_t j = 0; j < cols; ++j) m = xr[j] > m ? xr[j] : m;
    double s = 0;
    if (log) {
      for (int64_t j = 0; j < cols; ++j) s += double(std::exp(xr[j] - m));
      // (x_j - m) first: it is exact when x_j is near m, where folding m + log(s) into one shift would
      // round away digits of large logits.
      const T log_s = T(std::log(s));
      for (int64_t j = 0; j < cols; ++j) yr[j] = (xr[j] - m) - log_s;
    } else {
      // Store the exponentials first, then scale them: exp is computed once per element.
      for (int64_t j = 0; j < cols; ++j) {
        yr[j] = std::exp(xr[j] - m);
        s += double(yr[j]);
      }
      const T inv = T(1.0 / s);
      for (int64_t j = 0; j < cols; ++j) yr[j] *= inv;
    }
  }
}

template <typename T>
void softmax_backward_typed(const T* y, const T* dy, T* dx, int64_t rows, int64_t cols, bool log) {
#pragma omp parallel for if (rows * cols > kParallelElems)
  for (int64_t r = 0; r < rows; ++r) {
    const T* yr = y + r * cols;
    const T* dyr = dy + r * cols;
    T* dxr = dx + r * cols;
    double acc = 0;
    if (log) {
      for (int64_t j = 0; j < cols; ++j) acc += double(dyr[j]);
      const T s = T(acc);
      for (int64_t j = 0; j < cols; ++j) dxr[j] = dyr[j] - std::exp(yr[j]) * s;
    } else {
      for (int64_t j = 0; j < cols; ++j) acc += double(dyr[j]) * double(yr[j]);
      const T dot = T(acc);
      for (int64_t j = 0; j < cols; ++j) dxr[j] = yr[j] * (dyr[j] - dot);
    }
  }
}
}  // namespace

void softmax(DType dt, const void* x, void* y, int64_t rows, int64_t cols, bool log) {
  SANF_DISPATCH_FLOAT(dt, log ? "log_softmax" : "softmax", [&] {
    softmax_typed(static_cast<const scalar_t*>(x), static_cast<scalar_t*>(y), rows, cols, log);
  });
}

void softmax_backward(DType dt, const void* y, const void* dy, void* dx, int64_t rows, int64_t cols, bool log) {
  SANF_DISPATCH_FLOAT(dt, log ? "log_softmax backward" : "softmax backward", [&] {
    softmax_backward_typed(static_cast<const scalar_t*>(y), static_cast<const scalar_t*>(dy),
                           static_cast<scalar_t*>(dx), rows, cols, log);
  });
}

}  // namespace sanf::kernels::cpu
