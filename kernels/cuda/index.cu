// kernels/cuda/index.cu: gather (index_select) along the middle axis of (M, S, I), and its adjoint, the
// scatter-add index_add.
//
//   index_select:  out[m, j, i] = x[m, idx[j], i]       one thread per output element; consecutive threads
//                                                       take consecutive i, so reads and writes coalesce
//   index_add:     dst[m, idx[j], i] += src[m, j, i]    one thread per source element, adding with atomicAdd:
//                                                       repeated indices send several threads to one dst
//                                                       element. (f32 and f64 atomicAdd are native on sm_60+.)
// With repeated indices the order of the f32/f64 additions, and so the last bits of the sum, can vary from
// run to run; with distinct indices every dst element receives one addition and the result is exact.
#include "kernels/cuda/common.cuh"
#include "kernels/index.h"

namespace sanf::kernels::cuda {

using namespace cuda_detail;

namespace {

template <typename T>
__global__ void index_select_kernel(const T* __restrict__ x, const int64_t* __restrict__ idx, T* __restrict__ out,
                                    int64_t S, int64_t I, int64_t n_idx, int64_t n) {
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = e % I, j = (e / I) % n_idx, m = e / (I * n_idx);
    out[e] = x[(m * S + idx[j]) * I + i];
  }
}

template <typename T>
__global__ void index_add_kernel(const T* __restrict__ src, const int64_t* __restrict__ idx, T* __restrict__ dst,
                                 int64_t S, int64_t I, int64_t n_idx, int64_t n) {
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = e % I, j = (e / I) % n_idx, m = e / (I * n_idx);
    atomicAdd(&dst[(m * S + idx[j]) * I + i], src[e]);
  }
}

}  // namespace

void index_select(DType dt, const void* x, const int64_t* idx, void* out, int64_t M, int64_t S, int64_t I,
                  int64_t n_idx) {
  const int64_t n = M * n_idx * I;
  if (n == 0) return;
  SANF_DISPATCH_FLOAT(dt, "index_select", [&] {
    index_select_kernel<<<grid_for(n), kThreads>>>(static_cast<const scalar_t*>(x), idx, static_cast<scalar_t*>(out), S,
                                                   I, n_idx, n);
    SANF_CUDA_LAUNCH_CHECK();
  });
}

void index_add(DType dt, const void* src, const int64_t* idx, void* dst, int64_t M, int64_t S, int64_t I,
               int64_t n_idx) {
  const int64_t n = M * n_idx * I;
  if (n == 0) return;
  SANF_DISPATCH_FLOAT(dt, "index_add", [&] {
    index_add_kernel<<<grid_for(n), kThreads>>>(static_cast<const scalar_t*>(src), idx, static_cast<scalar_t*>(dst), S,
                                                I, n_idx, n);
    SANF_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace sanf::kernels::cuda
