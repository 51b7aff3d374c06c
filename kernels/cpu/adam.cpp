// kernels/cpu/adam.cpp: the fused Adam update (formula in kernels/adam.h).
//
// One pass over p, grad, m and v: memory-bound (a flow at the paper's ViT-B sizes has 27M parameters, so
// a step moves ~750 MB), so it runs on every core (kernels/cpu/loops.h's parallel_for) and vectorised
// (the loop is compiled per ISA level; the layer is built with -fno-math-errno, so the square root is the
// vector instruction, which is correctly rounded: the results are the scalar loop's, bit for bit).
#include <cmath>

#include "kernels/adam.h"
#include "kernels/cpu/loops.h"

namespace sanf::kernels::cpu {

namespace {
template <typename T>
struct Consts {
  T b1, b2, c1, c2, wd, eps, bc2_sqrt, step_size;
};

template <typename T>
[[gnu::always_inline]] inline void adam_range(T* __restrict p, const T* __restrict grad, T* __restrict m,
                                              T* __restrict v, int64_t lo, int64_t hi, const Consts<T>& k) {
#pragma omp simd
  for (int64_t i = lo; i < hi; ++i) {
    const T g = grad[i] + k.wd * p[i];
    const T mi = k.b1 * m[i] + k.c1 * g;
    const T vi = k.b2 * v[i] + k.c2 * g * g;
    m[i] = mi;
    v[i] = vi;
    p[i] -= k.step_size * mi / (std::sqrt(vi) / k.bc2_sqrt + k.eps);
  }
}
SANF_CPU_CLONES void adam_run(float* p, const float* g, float* m, float* v, int64_t lo, int64_t hi,
                              const Consts<float>& k) {
  adam_range(p, g, m, v, lo, hi, k);
}
SANF_CPU_CLONES void adam_run(double* p, const double* g, double* m, double* v, int64_t lo, int64_t hi,
                              const Consts<double>& k) {
  adam_range(p, g, m, v, lo, hi, k);
}

template <typename T>
void adam_typed(T* p, const T* grad, T* m, T* v, int64_t n, const AdamArgs& a) {
  // 1 - beta is formed in double, then rounded once: 1 - 0.999f in float would be off by 1.3e-5 relative.
  Consts<T> k;
  k.b1 = T(a.beta1), k.b2 = T(a.beta2), k.c1 = T(1.0 - a.beta1), k.c2 = T(1.0 - a.beta2);
  k.wd = T(a.weight_decay), k.eps = T(a.eps);
  const T bc1 = T(1) - T(std::pow(a.beta1, double(a.step)));
  k.bc2_sqrt = T(std::sqrt(1.0 - std::pow(a.beta2, double(a.step))));
  k.step_size = T(a.lr) / bc1;
  parallel_for(n, kGrainCheap, [&](int64_t lo, int64_t hi) { adam_run(p, grad, m, v, lo, hi, k); });
}
}  // namespace

void adam(DType dt, void* p, const void* grad, void* m, void* v, int64_t n, const AdamArgs& a) {
  SANF_DISPATCH_FLOAT(dt, "adam", [&] {
    adam_typed(static_cast<scalar_t*>(p), static_cast<const scalar_t*>(grad), static_cast<scalar_t*>(m),
               static_cast<scalar_t*>(v), n, a);
  });
}

}  // namespace sanf::kernels::cpu
