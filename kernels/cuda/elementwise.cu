// kernels/cuda/elementwise.cu: unary maps, their backward, and broadcasting binary ops on the GPU.
//
// The math is kernels/elementwise_math.h, the same host+device functions the CPU kernels call, so the two
// backends differ only by the device's libm (exp, erf, pow: a few ulp). One thread per element in a
// grid-stride loop; the op is a kernel argument (uniform across the grid, so the switch never diverges).
// Binary ops: when both inputs are dense the thread reads a[i], b[i]; otherwise it turns i into an offset
// in each input's layout (broadcast dims have stride 0, so they re-read the same element). Each thread
// reads index i before writing index i, so an output that aliases its input (in place) is fine; the
// pointers are therefore not marked __restrict__.
#include "kernels/cuda/common.cuh"
#include "kernels/elementwise_math.h"

namespace sanf::kernels::cuda {

using namespace cuda_detail;

namespace {

template <typename T>
__global__ void unary_kernel(UnaryOp op, const T* x, T* y, int64_t n, T alpha) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = unary_value(op, x[i], alpha);
}

// dx = dy * f'(x), with y = f(x) from the forward.
template <typename T>
__global__ void unary_backward_kernel(UnaryOp op, const T* x, const T* y, const T* dy, T* dx, int64_t n, T alpha) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dx[i] = dy[i] * unary_derivative(op, x[i], y[i], alpha);
}

template <typename T>
__global__ void binary_dense_kernel(BinaryOp op, const T* a, const T* b, T* out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = binary_value(op, a[i], b[i]);
}

// la and lb share out's shape; one decomposition of i gives both offsets. I: the index type, uint32_t when
// both layouts fit (layout_fits_32, common.cuh), else int64_t.
template <typename T, typename I>
__global__ void binary_strided_kernel(BinaryOp op, const T* a, Layout la, const T* b, Layout lb, T* out, I n) {
  for (I i = blockIdx.x * I(blockDim.x) + threadIdx.x; i < n; i += I(gridDim.x) * I(blockDim.x)) {
    I rem = i, oa = 0, ob = 0;
    for (int d = la.ndim - 1; d >= 0; --d) {
      const I k = rem % I(la.shape[d]);
      rem /= I(la.shape[d]);
      oa += k * I(la.strides[d]);
      ob += k * I(lb.strides[d]);
    }
    out[i] = binary_value(op, a[oa], b[ob]);
  }
}

}  // namespace

void unary(UnaryOp op, DType dt, const void* x, void* y, int64_t n, double alpha) {
  if (n == 0) return;
  SANF_DISPATCH_FLOAT(dt, unary_name(op), [&] {
    unary_kernel<<<grid_for(n), kThreads>>>(op, static_cast<const scalar_t*>(x), static_cast<scalar_t*>(y), n,
                                            scalar_t(alpha));
    SANF_CUDA_LAUNCH_CHECK();
  });
}

void unary_backward(UnaryOp op, DType dt, const void* x, const void* y, const void* dy, void* dx, int64_t n,
                    double alpha) {
  if (n == 0) return;
  SANF_DISPATCH_FLOAT(dt, unary_name(op), [&] {
    unary_backward_kernel<<<grid_for(n), kThreads>>>(op, static_cast<const scalar_t*>(x),
                                                     static_cast<const scalar_t*>(y), static_cast<const scalar_t*>(dy),
                                                     static_cast<scalar_t*>(dx), n, scalar_t(alpha));
    SANF_CUDA_LAUNCH_CHECK();
  });
}

void binary(BinaryOp op, DType dt, const void* a, Layout la, const void* b, Layout lb, void* out, int64_t n) {
  if (n == 0) return;
  SANF_DISPATCH_FLOAT(dt, binary_name(op), [&] {
    const auto* pa = static_cast<const scalar_t*>(a);
    const auto* pb = static_cast<const scalar_t*>(b);
    auto* po = static_cast<scalar_t*>(out);
    if (layout_is_contiguous(la) && layout_is_contiguous(lb)) {
      binary_dense_kernel<<<grid_for(n), kThreads>>>(op, pa, pb, po, n);
    } else {
      if (layout_fits_32(la) && layout_fits_32(lb)) {
        binary_strided_kernel<<<grid_for(n), kThreads>>>(op, pa, la, pb, lb, po, uint32_t(n));
      } else {
        binary_strided_kernel<<<grid_for(n), kThreads>>>(op, pa, la, pb, lb, po, n);
      }
    }
    SANF_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace sanf::kernels::cuda
