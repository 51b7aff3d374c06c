// kernels/cuda/adam.cu: the fused Adam update on the GPU (formula in kernels/adam.h).
//
// One thread per parameter element, in a grid-stride loop; the same operations in the same order as
// kernels/cpu/adam.cpp (the step-dependent constants are computed once on the host, in double, then
// rounded to the compute type, exactly as there).
#include <cmath>

#include "kernels/adam.h"
#include "kernels/cuda/common.cuh"

namespace sanf::kernels::cuda {

using namespace cuda_detail;

namespace {

template <typename T>
__global__ void adam_kernel(T* p, const T* grad, T* m, T* v, int64_t n, T b1, T b2, T c1, T c2, T wd, T eps,
                            T step_size, T bc2_sqrt) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const T g = grad[i] + wd * p[i];
    const T mi = b1 * m[i] + c1 * g;  // c1 = 1 - beta1, formed in double on the host
    const T vi = b2 * v[i] + c2 * g * g;
    m[i] = mi;
    v[i] = vi;
    p[i] -= step_size * mi / (std::sqrt(vi) / bc2_sqrt + eps);
  }
}

}  // namespace

void adam(DType dt, void* p, const void* grad, void* m, void* v, int64_t n, const AdamArgs& a) {
  if (n == 0) return;
  SANF_DISPATCH_FLOAT(dt, "adam", [&] {
    using T = scalar_t;
    const T bc1 = T(1) - T(std::pow(a.beta1, double(a.step)));
    const T bc2_sqrt = T(std::sqrt(1.0 - std::pow(a.beta2, double(a.step))));
    const T step_size = T(a.lr) / bc1;
    adam_kernel<<<grid_for(n), kThreads>>>(static_cast<T*>(p), static_cast<const T*>(grad), static_cast<T*>(m),
                                           static_cast<T*>(v), n, T(a.beta1), T(a.beta2), T(1.0 - a.beta1),
                                           T(1.0 - a.beta2), T(a.weight_decay), T(a.eps), step_size, bc2_sqrt);
    SANF_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace sanf::kernels::cuda
