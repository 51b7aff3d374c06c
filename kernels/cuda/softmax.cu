// kernels/cuda/softmax.cu: softmax and log-softmax over the last axis of (rows, cols), forward and backward.
//
// One block per row (grid-stride over rows); the block's threads stride over the row's columns.
// Forward, three passes over the row, each pass a block reduction (math in kernels/softmax.h):
//   m = max_j x_j                         (NaN propagates: a NaN row gives a NaN row)
//   s = sum_j exp(x_j - m)
//   softmax: y_j = exp(x_j - m) / s       log_softmax: y_j = x_j - m - log(s)
// Backward, given y:
//   softmax:      d = sum_k dy_k y_k;   dx_j = y_j (dy_j - d)
//   log_softmax:  d = sum_k dy_k;       dx_j = dy_j - exp(y_j) d
// The sums s and d are accumulated in double, also for f32, as on the CPU (kernels/cpu/softmax.cpp).
#include <cmath>
#include <limits>

#include "kernels/cuda/common.cuh"
#include "kernels/softmax.h"

namespace sanf::kernels::cuda {

using namespace cuda_detail;

namespace {

// O: the output's element type, T or (softmax_to_bf16) bf16, each value stored by store_from_double as
// the copy kernel converts.
template <typename T, typename O>
__global__ void softmax_kernel(const T* __restrict__ x, O* __restrict__ y, int64_t rows, int64_t cols, bool log) {
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* xr = x + row * cols;
    O* yr = y + row * cols;
    T m = -std::numeric_limits<T>::infinity();
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) m = MaxOp{}(xr[j], m);
    m = block_reduce(m, MaxOp{});
    double s = 0;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) s += double(std::exp(xr[j] - m));
    s = block_reduce(s, SumOp{});
    if (log) {
      // (x_j - m) first, as the CPU: exact near the maximum, where a folded shift m + log(s) would round
      // to |m|'s ulp (5e-4 at logits near 1e4).
      const T log_s = T(std::log(s));
      for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) store_from_double(yr, j, double((xr[j] - m) - log_s));
    } else {
      const T inv = T(1.0 / s);
      for (int64_t j = threadIdx.x; j < cols; j += blockDim.x)
        store_from_double(yr, j, double(std::exp(xr[j] - m) * inv));
    }
  }
}

template <typename T>
__global__ void softmax_backward_kernel(const T* __restrict__ y, const T* __restrict__ dy, T* __restrict__ dx,
                                        int64_t rows, int64_t cols, bool log) {
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* yr = y + row * cols;
    const T* dyr = dy + row * cols;
    T* dxr = dx + row * cols;
    double acc = 0;
    if (log) {
      for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) acc += double(dyr[j]);
    } else {
      for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) acc += double(dyr[j]) * double(yr[j]);
    }
    const T d = T(block_reduce(acc, SumOp{}));
    if (log) {
      for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) dxr[j] = dyr[j] - std::exp(yr[j]) * d;
    } else {
      for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) dxr[j] = yr[j] * (dyr[j] - d);
    }
  }
}

unsigned row_blocks(int64_t rows) { return unsigned(std::min<int64_t>(rows, 1 << 16)); }

}  // namespace

void softmax(DType dt, const void* x, void* y, int64_t rows, int64_t cols, bool log) {
  if (rows == 0 || cols == 0) return;
  SANF_DISPATCH_FLOAT(dt, log ? "log_softmax" : "softmax", [&] {
    softmax_kernel<<<row_blocks(rows), row_threads(cols)>>>(static_cast<const scalar_t*>(x), static_cast<scalar_t*>(y),
                                                            rows, cols, log);
    SANF_CUDA_LAUNCH_CHECK();
  });
}

void softmax_to_bf16(const float* x, bf16* y, int64_t rows, int64_t cols) {
  if (rows == 0 || cols == 0) return;
  softmax_kernel<<<row_blocks(rows), row_threads(cols)>>>(x, y, rows, cols, false);
  SANF_CUDA_LAUNCH_CHECK();
}

void softmax_backward(DType dt, const void* y, const void* dy, void* dx, int64_t rows, int64_t cols, bool log) {
  if (rows == 0 || cols == 0) return;
  SANF_DISPATCH_FLOAT(dt, log ? "log_softmax backward" : "softmax backward", [&] {
    softmax_backward_kernel<<<row_blocks(rows), row_threads(cols)>>>(
        static_cast<const scalar_t*>(y), static_cast<const scalar_t*>(dy), static_cast<scalar_t*>(dx), rows, cols, log);
    SANF_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace sanf::kernels::cuda
