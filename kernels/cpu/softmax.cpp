// kernels/cpu/softmax.cpp: softmax and log-softmax over the rows of a contiguous (rows, cols) block.
//
// One row at a time (rows shared out by parallel_for), three passes over the row: the maximum m, then
// s = sum_k exp(x_k - m), then the outputs. Subtracting m makes every exponent <= 0, so nothing overflows
// and the largest term is exactly 1 (s >= 1, log s is safe). s and the backward's dot products are
// accumulated in double, also for f32, like the sums in reduce.cpp.
//   softmax:      y_j = exp(x_j - m) / s
//   log_softmax:  y_j = x_j - m - log(s)
// Backward, from the saved output y (see kernels/softmax.h):
//   softmax:      dx_j = y_j * (dy_j - sum_k dy_k y_k)
//   log_softmax:  dx_j = dy_j - exp(y_j) * sum_k dy_k
//
// Every pass vectorises (SANF_CPU_CLONES, kernels/cpu/loops.h): the maximum and the double sums run in
// kLanes interleaved lanes (lane_sum: a fixed order, whatever the ISA), and f32 uses the vectorisable
// exp_f32 of kernels/cpu/vec_math.h (about 1 ulp) instead of one expf call per element. f64 keeps
// std::exp. NaN never wins the maximum (x > m ? x : m), as before; it reaches the outputs through exp.
#include <cmath>
#include <limits>

#include "kernels/cpu/loops.h"
#include "kernels/cpu/vec_math.h"
#include "kernels/softmax.h"

#include <vector>

namespace sanf::kernels::cpu {

namespace {

[[gnu::always_inline]] inline float exp_of(float v) { return vmath::exp_f32(v); }
[[gnu::always_inline]] inline double exp_of(double v) { return std::exp(v); }

template <typename T>
[[gnu::always_inline]] inline T row_max(const T* x, int64_t n) {
  T m[kLanes];
  for (int k = 0; k < kLanes; ++k) m[k] = -std::numeric_limits<T>::infinity();
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int k = 0; k < kLanes; ++k) m[k] = x[j + k] > m[k] ? x[j + k] : m[k];
  for (int k = 0; j < n; ++j, ++k) m[k] = x[j] > m[k] ? x[j] : m[k];
  T r = m[0];
  for (int k = 1; k < kLanes; ++k) r = m[k] > r ? m[k] : r;
  return r;
}

template <typename T>
[[gnu::always_inline]] inline void softmax_rows_t(const T* x, T* y, int64_t r0, int64_t r1, int64_t cols, bool log) {
  for (int64_t r = r0; r < r1; ++r) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    const T m = row_max(xr, cols);
    if (log) {
      const double s = lane_sum(cols, [&](int64_t j) { return double(exp_of(T(xr[j] - m))); });
      // (x_j - m) first: it is exact when x_j is near m, where folding m + log(s) into one shift would
      // round away digits of large logits.
      const T log_s = T(std::log(s));
      for (int64_t j = 0; j < cols; ++j) yr[j] = (xr[j] - m) - log_s;
    } else {
      // Store the exponentials first, then scale them: exp is computed once per element.
      for (int64_t j = 0; j < cols; ++j) yr[j] = exp_of(T(xr[j] - m));
      const T inv = T(1.0 / lane_sum(cols, [&](int64_t j) { return double(yr[j]); }));
      for (int64_t j = 0; j < cols; ++j) yr[j] *= inv;
    }
  }
}

template <typename T>
[[gnu::always_inline]] inline void softmax_backward_rows_t(const T* y, const T* dy, T* dx, int64_t r0, int64_t r1,
                                                           int64_t cols, bool log) {
  for (int64_t r = r0; r < r1; ++r) {
    const T* yr = y + r * cols;
    const T* dyr = dy + r * cols;
    T* dxr = dx + r * cols;
    if (log) {
      const T s = T(lane_sum(cols, [&](int64_t j) { return double(dyr[j]); }));
      for (int64_t j = 0; j < cols; ++j) dxr[j] = dyr[j] - exp_of(yr[j]) * s;
    } else {
      const T dot = T(lane_sum(cols, [&](int64_t j) { return double(dyr[j]) * double(yr[j]); }));
      for (int64_t j = 0; j < cols; ++j) dxr[j] = yr[j] * (dyr[j] - dot);
    }
  }
}

SANF_CPU_CLONES void softmax_rows(const float* x, float* y, int64_t r0, int64_t r1, int64_t cols, bool log) {
  softmax_rows_t(x, y, r0, r1, cols, log);
}
SANF_CPU_CLONES void softmax_rows(const double* x, double* y, int64_t r0, int64_t r1, int64_t cols, bool log) {
  softmax_rows_t(x, y, r0, r1, cols, log);
}
SANF_CPU_CLONES void softmax_backward_rows(const float* y, const float* dy, float* dx, int64_t r0, int64_t r1,
                                           int64_t cols, bool log) {
  softmax_backward_rows_t(y, dy, dx, r0, r1, cols, log);
}
SANF_CPU_CLONES void softmax_backward_rows(const double* y, const double* dy, double* dx, int64_t r0, int64_t r1,
                                           int64_t cols, bool log) {
  softmax_backward_rows_t(y, dy, dx, r0, r1, cols, log);
}

// Rows per thread: a row costs about one exp per element.
int64_t row_grain(int64_t cols) { return std::max<int64_t>(1, kGrainHeavy / std::max<int64_t>(cols, 1)); }

}  // namespace

void softmax(DType dt, const void* x, void* y, int64_t rows, int64_t cols, bool log) {
  SANF_DISPATCH_FLOAT(dt, log ? "log_softmax" : "softmax", [&] {
    const auto* xs = static_cast<const scalar_t*>(x);
    auto* ys = static_cast<scalar_t*>(y);
    parallel_for(
        rows, row_grain(cols), [&](int64_t r0, int64_t r1) { softmax_rows(xs, ys, r0, r1, cols, log); }, 1);
  });
}

// Row by row: the f32 softmax of the row into a scratch row (the same kernel as softmax), then rounded.
void softmax_to_bf16(const float* x, bf16* y, int64_t rows, int64_t cols) {
  parallel_for(
      rows, row_grain(cols),
      [&](int64_t r0, int64_t r1) {
        std::vector<float> row(static_cast<size_t>(cols));
        for (int64_t r = r0; r < r1; ++r) {
          softmax_rows(x + r * cols, row.data(), 0, 1, cols, false);
          bf16* yr = y + r * cols;
          for (int64_t j = 0; j < cols; ++j) store_from_double(yr, j, double(row[size_t(j)]));
        }
      },
      1);
}

void softmax_backward(DType dt, const void* y, const void* dy, void* dx, int64_t rows, int64_t cols, bool log) {
  SANF_DISPATCH_FLOAT(dt, log ? "log_softmax backward" : "softmax backward", [&] {
    const auto* ys = static_cast<const scalar_t*>(y);
    const auto* dys = static_cast<const scalar_t*>(dy);
    auto* dxs = static_cast<scalar_t*>(dx);
    parallel_for(
        rows, row_grain(cols), [&](int64_t r0, int64_t r1) { softmax_backward_rows(ys, dys, dxs, r0, r1, cols, log); },
        1);
  });
}

}  // namespace sanf::kernels::cpu
