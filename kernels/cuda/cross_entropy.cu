// kernels/cuda/cross_entropy.cu: softmax cross-entropy, forward and backward (math in kernels/cross_entropy.h).
//
// Forward: one block per row (grid-stride over rows), the block's threads strided over the row's columns;
// two block reductions, the maximum m and s = sum_j exp(x_j - m) in double, as the CPU kernel; thread 0
// writes lse = m + log(s) and the loss lse - x[label].
// Backward: one thread per element (grid-stride): dx = dL / rows * (exp(x - lse[row]) - [col == label]),
// dL read from device memory.
#include <cmath>
#include <limits>

#include "kernels/cross_entropy.h"
#include "kernels/cuda/common.cuh"

namespace sanf::kernels::cuda {

using namespace cuda_detail;

namespace {

template <typename T>
__global__ void cross_entropy_kernel(const T* __restrict__ x, const int64_t* __restrict__ labels, T* __restrict__ loss,
                                     T* __restrict__ lse, int64_t rows, int64_t cols) {
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* xr = x + row * cols;
    T m = -std::numeric_limits<T>::infinity();
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) m = MaxOp{}(xr[j], m);
    m = block_reduce(m, MaxOp{});
    double s = 0;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) s += std::exp(double(xr[j] - m));
    s = block_reduce(s, SumOp{});
    if (threadIdx.x == 0) {
      const double l = double(m) + std::log(s);
      lse[row] = T(l);
      loss[row] = T(l - double(xr[labels[row]]));
    }
  }
}

template <typename T>
__global__ void cross_entropy_backward_kernel(const T* __restrict__ x, const int64_t* __restrict__ labels,
                                              const T* __restrict__ lse, const T* __restrict__ dL, T* __restrict__ dx,
                                              int64_t rows, int64_t cols) {
  const T scale = *dL / T(rows);
  const int64_t n = rows * cols;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t row = i / cols, col = i % cols;
    const T p = std::exp(x[i] - lse[row]);
    dx[i] = scale * (col == labels[row] ? p - T(1) : p);
  }
}

}  // namespace

void cross_entropy(DType dt, const void* x, const int64_t* labels, void* loss, void* lse, int64_t rows, int64_t cols) {
  if (rows == 0 || cols == 0) return;
  SANF_DISPATCH_FLOAT(dt, "cross_entropy", [&] {
    cross_entropy_kernel<<<row_blocks(rows), row_threads(cols)>>>(
        static_cast<const scalar_t*>(x), labels, static_cast<scalar_t*>(loss), static_cast<scalar_t*>(lse), rows, cols);
    SANF_CUDA_LAUNCH_CHECK();
  });
}

void cross_entropy_backward(DType dt, const void* x, const int64_t* labels, const void* lse, const void* dL, void* dx,
                            int64_t rows, int64_t cols) {
  if (rows == 0 || cols == 0) return;
  SANF_DISPATCH_FLOAT(dt, "cross_entropy backward", [&] {
    cross_entropy_backward_kernel<<<grid_for(rows * cols), kThreads>>>(
        static_cast<const scalar_t*>(x), labels, static_cast<const scalar_t*>(lse), static_cast<const scalar_t*>(dL),
        static_cast<scalar_t*>(dx), rows, cols);
    SANF_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace sanf::kernels::cuda
