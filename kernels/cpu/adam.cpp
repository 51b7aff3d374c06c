// kernels/cpu/adam.cpp: the fused Adam update (formula in kernels/adam.h).
#include <cmath>

#include "kernels/adam.h"

namespace sanf::kernels::cpu {

namespace {
template <typename T>
void adam_typed(T* p, const T* grad, T* m, T* v, int64_t n, const AdamArgs& a) {
  // 1 - beta is formed in double, then rounded once: 1 - 0.999f in float would be off by 1.3e-5 relative.
  const T b1 = T(a.beta1), b2 = T(a.beta2), c1 = T(1.0 - a.beta1), c2 = T(1.0 - a.beta2);
  const T wd = T(a.weight_decay), eps = T(a.eps);
  const T bc1 = T(1) - T(std::pow(a.beta1, double(a.step)));
  const T bc2_sqrt = T(std::sqrt(1.0 - std::pow(a.beta2, double(a.step))));
  const T step_size = T(a.lr) / bc1;
#pragma omp parallel for if (n > (1 << 15))
  for (int64_t i = 0; i < n; ++i) {
    const T g = grad[i] + wd * p[i];
    m[i] = b1 * m[i] + c1 * g;
    v[i] = b2 * v[i] + c2 * g * g;
    p[i] -= step_size * m[i] / (std::sqrt(v[i]) / bc2_sqrt + eps);
  }
}
}  // namespace

void adam(DType dt, void* p, const void* grad, void* m, void* v, int64_t n, const AdamArgs& a) {
  SANF_DISPATCH_FLOAT(dt, "adam", [&] {
    adam_typed(static_cast<scalar_t*>(p), static_cast<const scalar_t*>(grad), static_cast<scalar_t*>(m),
               static_cast<scalar_t*>(v), n, a);
  });
}

}  // namespace sanf::kernels::cpu
