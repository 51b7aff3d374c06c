// kernels/cpu/adam.cpp: the fused Adam update (formula in kernels/adam.h).
//
// One pass over p, grad, m and v: memory-bound (a flow at the paper's ViT-B sizes has 27M parameters, so
// a step moves ~750 MB), so it runs on every core (kernels/cpu/loops.h's parallel_for) and vectorised
// (kernels/adam.h's adam_element in a loop compiled per ISA level; the layer is built with -fno-math-errno,
// so the square root is the vector instruction, which is correctly rounded: the results are the scalar
// loop's, bit for bit).
#include <cmath>

#include "kernels/adam.h"
#include "kernels/cpu/loops.h"

namespace sanf::kernels::cpu {

namespace {
template <typename T>
[[gnu::always_inline]] inline void adam_range(T* __restrict p, const T* __restrict grad, T* __restrict m,
                                              T* __restrict v, int64_t lo, int64_t hi, const AdamConsts<T>& k) {
#pragma omp simd
  for (int64_t i = lo; i < hi; ++i) adam_element(k, p, grad, m, v, i);
}
SANF_CPU_CLONES void adam_run(float* p, const float* g, float* m, float* v, int64_t lo, int64_t hi,
                              const AdamConsts<float>& k) {
  adam_range(p, g, m, v, lo, hi, k);
}
SANF_CPU_CLONES void adam_run(double* p, const double* g, double* m, double* v, int64_t lo, int64_t hi,
                              const AdamConsts<double>& k) {
  adam_range(p, g, m, v, lo, hi, k);
}

template <typename T>
void adam_typed(T* p, const T* grad, T* m, T* v, int64_t n, const AdamArgs& a) {
  const AdamConsts<T> k = adam_consts<T>(a);
  parallel_for(n, kGrainCheap, [&](int64_t lo, int64_t hi) { adam_run(p, grad, m, v, lo, hi, k); });
}
}  // namespace

void adam(DType dt, void* p, const void* grad, void* m, void* v, int64_t n, const AdamArgs& a) {
  SANF_DISPATCH_FLOAT(dt, "adam", [&] {
    adam_typed(static_cast<scalar_t*>(p), static_cast<const scalar_t*>(grad), static_cast<scalar_t*>(m),
               static_cast<scalar_t*>(v), n, a);
  });
}

void adam_multi(DType dt, const AdamSlot* slots, int64_t count, const AdamArgs& a) {
  for (int64_t i = 0; i < count; ++i) {
    AdamArgs ai = a;
    ai.step = slots[i].step;
    adam(dt, slots[i].p, slots[i].grad, slots[i].m, slots[i].v, slots[i].n, ai);
  }
}

}  // namespace sanf::kernels::cpu
