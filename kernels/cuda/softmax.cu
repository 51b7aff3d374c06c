// kernels/cuda/softmax.cu: softmax and log-softmax over the last axis of (rows, cols), forward and backward.
//
// Forward, two thread mappings:
//   rows of up to 1024 columns (attention's N x N scores, logits): one warp per row, 8 rows per block. Each
//     lane loads its columns j = lane, lane + 32, ... once into registers (kPer of them, a compile-time
//     count, so the array stays in registers), and the max and the sum are warp shuffles: one read of x,
//     one write of y, no shared memory, no block barrier.
//   longer rows: one block per row (grid-stride over rows); the block's threads stride over the columns.
// Either way, three steps over the row (math in kernels/softmax.h):
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

// One warp per row, for cols <= 32 * kPer: the row's values stay in registers between the three steps.
// The sum is combined by a butterfly, after which the lanes can hold different roundings of it, so every lane
// takes lane 0's (the same bits for the whole row, as the block kernel's block_reduce gives).
template <typename T, typename O, int kPer>
__global__ void softmax_warp_kernel(const T* __restrict__ x, O* __restrict__ y, int64_t rows, int64_t cols, bool log) {
  const int lane = threadIdx.x % 32;
  const int64_t warps = blockDim.x / 32;
  for (int64_t row = blockIdx.x * warps + threadIdx.x / 32; row < rows; row += int64_t(gridDim.x) * warps) {
    const T* xr = x + row * cols;
    O* yr = y + row * cols;
    T v[kPer];
    T m = -std::numeric_limits<T>::infinity();
#pragma unroll
    for (int k = 0; k < kPer; ++k) {
      const int64_t j = lane + 32 * k;
      v[k] = j < cols ? xr[j] : -std::numeric_limits<T>::infinity();
      m = MaxOp{}(v[k], m);
    }
    m = warp_reduce(m, MaxOp{});
    double s = 0;
#pragma unroll
    for (int k = 0; k < kPer; ++k)
      if (lane + 32 * k < cols) s += double(std::exp(v[k] - m));
    s = __shfl_sync(0xffffffffu, warp_reduce(s, SumOp{}), 0);
    if (log) {
      const T log_s = T(std::log(s));  // (x_j - m) first, as the block kernel
#pragma unroll
      for (int k = 0; k < kPer; ++k)
        if (lane + 32 * k < cols) store_from_double(yr, lane + 32 * k, double((v[k] - m) - log_s));
    } else {
      const T inv = T(1.0 / s);
#pragma unroll
      for (int k = 0; k < kPer; ++k)
        if (lane + 32 * k < cols) store_from_double(yr, lane + 32 * k, double(std::exp(v[k] - m) * inv));
    }
  }
}

// The forward for any row length: the warp kernel up to 1024 columns, else the block kernel.
template <typename T, typename O>
void launch_softmax(const T* x, O* y, int64_t rows, int64_t cols, bool log) {
  constexpr int kRowsPerBlock = 8;
  const unsigned warp_blocks = row_blocks((rows + kRowsPerBlock - 1) / kRowsPerBlock);
  const int threads = 32 * kRowsPerBlock;
  if (cols <= 128) {
    softmax_warp_kernel<T, O, 4><<<warp_blocks, threads>>>(x, y, rows, cols, log);
  } else if (cols <= 256) {
    softmax_warp_kernel<T, O, 8><<<warp_blocks, threads>>>(x, y, rows, cols, log);
  } else if (cols <= 512) {
    softmax_warp_kernel<T, O, 16><<<warp_blocks, threads>>>(x, y, rows, cols, log);
  } else if (cols <= 1024) {
    softmax_warp_kernel<T, O, 32><<<warp_blocks, threads>>>(x, y, rows, cols, log);
  } else {
    softmax_kernel<<<row_blocks(rows), row_threads(cols)>>>(x, y, rows, cols, log);
  }
  SANF_CUDA_LAUNCH_CHECK();
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

}  // namespace

void softmax(DType dt, const void* x, void* y, int64_t rows, int64_t cols, bool log) {
  if (rows == 0 || cols == 0) return;
  SANF_DISPATCH_FLOAT(dt, log ? "log_softmax" : "softmax", [&] {
    launch_softmax(static_cast<const scalar_t*>(x), static_cast<scalar_t*>(y), rows, cols, log);
  });
}

void softmax_to_bf16(const float* x, bf16* y, int64_t rows, int64_t cols) {
  if (rows == 0 || cols == 0) return;
  launch_softmax(x, y, rows, cols, false);
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
