// kernels/cuda/copy.cu: strided copy with dtype conversion, and fill, on the GPU.
//
// copy: one thread per element of the common shape. The thread turns its row-major linear index into an
// offset in the source layout and one in the destination layout (layout_offset: div/mod per dim, in 32 bits
// when both layouts allow), loads,
// converts through double (as kernels/cpu/copy.cpp: exact for every pair of storage types, rounding to
// nearest even into bf16/f16) and stores. Same-dtype copies move the bits unchanged. When both sides are
// contiguous and of one dtype, the copy is a single cudaMemcpyAsync on the default stream; contiguous and of
// two dtypes (f32 activations rounded to bf16 for a GEMM), convert_dense_kernel converts element i to
// element i, with the same conversion and no index arithmetic (the 64-bit divisions of layout_offset made
// the strided kernel run at about a quarter of the memory bandwidth on an H200).
#include <type_traits>

#include "kernels/copy.h"
#include "kernels/cuda/common.cuh"

namespace sanf::kernels::cuda {

using namespace cuda_detail;

namespace {

// I: the index type, uint32_t when both layouts fit (layout_fits_32), else int64_t.
template <typename S, typename D, typename I>
__global__ void copy_kernel(const S* __restrict__ src, Layout ls, D* __restrict__ dst, Layout ld, I n) {
  for (I i = blockIdx.x * I(blockDim.x) + threadIdx.x; i < n; i += I(gridDim.x) * I(blockDim.x)) {
    const I so = layout_offset(ls, i), dof = layout_offset(ld, i);
    if constexpr (std::is_same_v<S, D>) {
      dst[dof] = src[so];
    } else {
      store_from_double(dst, dof, load_as_double(src, so));
    }
  }
}

template <typename S, typename D>
__global__ void convert_dense_kernel(const S* __restrict__ src, D* __restrict__ dst, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    store_from_double(dst, i, load_as_double(src, i));
}

template <typename T>
__global__ void fill_kernel(T* __restrict__ p, int64_t n, T value) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    p[i] = value;
}

}  // namespace

void copy(DType src_dt, const void* src, Layout ls, DType dst_dt, void* dst, Layout ld) {
  const int64_t n = layout_numel(ls);
  if (n == 0) return;
  if (src_dt == dst_dt && layout_is_contiguous(ls) && layout_is_contiguous(ld)) {
    CUDA_CHECK(cudaMemcpyAsync(dst, src, size_t(n * dtype_size(src_dt)), cudaMemcpyDeviceToDevice, 0));
    return;
  }
  const bool dense = layout_is_contiguous(ls) && layout_is_contiguous(ld);
  SANF_DISPATCH_ALL(src_dt, "copy", [&] {
    using S = scalar_t;
    SANF_DISPATCH_ALL(dst_dt, "copy", [&] {
      if (dense) {
        convert_dense_kernel<S, scalar_t>
            <<<grid_for(n), kThreads>>>(static_cast<const S*>(src), static_cast<scalar_t*>(dst), n);
      } else if (layout_fits_32(ls) && layout_fits_32(ld)) {
        copy_kernel<S, scalar_t, uint32_t><<<grid_for(n), kThreads>>>(static_cast<const S*>(src), ls,
                                                                       static_cast<scalar_t*>(dst), ld, uint32_t(n));
      } else {
        copy_kernel<S, scalar_t, int64_t>
            <<<grid_for(n), kThreads>>>(static_cast<const S*>(src), ls, static_cast<scalar_t*>(dst), ld, n);
      }
      SANF_CUDA_LAUNCH_CHECK();
    });
  });
}

void fill(DType dt, void* dst, int64_t n, double value) {
  if (n == 0) return;
  SANF_DISPATCH_ALL(dt, "fill", [&] {
    scalar_t v{};
    store_from_double(&v, 0, value);  // converted once, on the host
    fill_kernel<<<grid_for(n), kThreads>>>(static_cast<scalar_t*>(dst), n, v);
    SANF_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace sanf::kernels::cuda
