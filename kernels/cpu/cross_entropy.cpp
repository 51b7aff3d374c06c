// kernels/cpu/cross_entropy.cpp: softmax cross-entropy, the plain reference (math in kernels/cross_entropy.h).
//
// One row at a time, rows shared out by parallel_for. The forward makes two passes over a row: the maximum
// m, then s = sum_j exp(x_j - m) accumulated in double (every exponent is <= 0, so nothing overflows and
// s >= 1). The backward makes one pass: softmax_j = exp(x_j - lse), minus 1 at the label, times dL / rows.
#include <cmath>
#include <limits>

#include "kernels/cpu/loops.h"
#include "kernels/cross_entropy.h"

namespace sanf::kernels::cpu {

namespace {

template <typename T>
void cross_entropy_rows(const T* x, const int64_t* labels, T* loss, T* lse, int64_t r0, int64_t r1, int64_t cols) {
  for (int64_t r = r0; r < r1; ++r) {
    const T* xr = x + r * cols;
    T m = -std::numeric_limits<T>::infinity();
    for (int64_t j = 0; j < cols; ++j) m = xr[j] > m ? xr[j] : m;
    double s = 0;
    for (int64_t j = 0; j < cols; ++j) s += std::exp(double(xr[j] - m));
    const double l = double(m) + std::log(s);
    lse[r] = T(l);
    loss[r] = T(l - double(xr[labels[r]]));
  }
}

template <typename T>
void cross_entropy_backward_rows(const T* x, const int64_t* labels, const T* lse, T scale, T* dx, int64_t r0,
                                 int64_t r1, int64_t cols) {
  for (int64_t r = r0; r < r1; ++r) {
    const T* xr = x + r * cols;
    T* dxr = dx + r * cols;
    for (int64_t j = 0; j < cols; ++j) dxr[j] = scale * std::exp(xr[j] - lse[r]);
    dxr[labels[r]] -= scale;
  }
}

int64_t row_grain(int64_t cols) { return std::max<int64_t>(1, kGrainHeavy / std::max<int64_t>(cols, 1)); }

}  // namespace

void cross_entropy(DType dt, const void* x, const int64_t* labels, void* loss, void* lse, int64_t rows, int64_t cols) {
  SANF_DISPATCH_FLOAT(dt, "cross_entropy", [&] {
    parallel_for(
        rows, row_grain(cols),
        [&](int64_t r0, int64_t r1) {
          cross_entropy_rows(static_cast<const scalar_t*>(x), labels, static_cast<scalar_t*>(loss),
                             static_cast<scalar_t*>(lse), r0, r1, cols);
        },
        1);
  });
}

void cross_entropy_backward(DType dt, const void* x, const int64_t* labels, const void* lse, const void* dL, void* dx,
                            int64_t rows, int64_t cols) {
  SANF_DISPATCH_FLOAT(dt, "cross_entropy backward", [&] {
    const scalar_t scale = *static_cast<const scalar_t*>(dL) / scalar_t(rows);
    parallel_for(
        rows, row_grain(cols),
        [&](int64_t r0, int64_t r1) {
          cross_entropy_backward_rows(static_cast<const scalar_t*>(x), labels, static_cast<const scalar_t*>(lse), scale,
                                      static_cast<scalar_t*>(dx), r0, r1, cols);
        },
        1);
  });
}

}  // namespace sanf::kernels::cpu
