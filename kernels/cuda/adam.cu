// kernels/cuda/adam.cu: the fused Adam update on the GPU (formula in kernels/adam.h).
//
// One thread per parameter element, in a grid-stride loop, each running kernels/adam.h's adam_element with
// the step's constants from adam_consts: the CPU's operations, in the CPU's order.
#include <cmath>

#include "kernels/adam.h"
#include "kernels/cuda/common.cuh"

namespace sanf::kernels::cuda {

using namespace cuda_detail;

namespace {

template <typename T>
__global__ void adam_kernel(T* p, const T* grad, T* m, T* v, int64_t n, AdamConsts<T> k) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    adam_element(k, p, grad, m, v, i);
}

}  // namespace

void adam(DType dt, void* p, const void* grad, void* m, void* v, int64_t n, const AdamArgs& a) {
  if (n == 0) return;
  SANF_DISPATCH_FLOAT(dt, "adam", [&] {
    using T = scalar_t;
    adam_kernel<<<grid_for(n), kThreads>>>(static_cast<T*>(p), static_cast<const T*>(grad), static_cast<T*>(m),
                                           static_cast<T*>(v), n, adam_consts<T>(a));
    SANF_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace sanf::kernels::cuda
