// kernels/adam.h: one fused Adam update over a parameter tensor (PyTorch's torch.optim.Adam, not AdamW).
//
// With step t (1-based), bias corrections bc1 = 1 - beta1^t, bc2 = 1 - beta2^t, per element:
//   g = grad + weight_decay * p                       (L2 penalty added to the gradient)
//   m = beta1 * m + (1 - beta1) * g
//   v = beta2 * v + (1 - beta2) * g^2
//   p = p - (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps)
// in this order of operations, as PyTorch's single-tensor implementation, so results match it to rounding.
#pragma once

#include "kernels/dispatch.h"

#include <cmath>
#include <vector>

namespace sanf::kernels {

struct AdamArgs {
  double lr, beta1, beta2, eps, weight_decay;
  int64_t step;  // already incremented: 1 on the first update
};

// A step's constants in the compute type T, formed once on the host in double and rounded once
// (1 - beta1 in float would be off by 1.3e-5 relative for beta1 = 0.999).
template <typename T>
struct AdamConsts {
  T b1, b2, c1, c2, wd, eps, bc2_sqrt, step_size;
};
template <typename T>
AdamConsts<T> adam_consts(const AdamArgs& a) {
  AdamConsts<T> k;
  k.b1 = T(a.beta1), k.b2 = T(a.beta2), k.c1 = T(1.0 - a.beta1), k.c2 = T(1.0 - a.beta2);
  k.wd = T(a.weight_decay), k.eps = T(a.eps);
  const T bc1 = T(1) - T(std::pow(a.beta1, double(a.step)));
  k.bc2_sqrt = T(std::sqrt(1.0 - std::pow(a.beta2, double(a.step))));
  k.step_size = T(a.lr) / bc1;
  return k;
}

// Element i's update, the formula above: the CPU loop (kernels/cpu/adam.cpp) and the CUDA kernel
// (kernels/cuda/adam.cu) both run this, so the two devices do the same operations in the same order.
template <typename T>
SANF_HD void adam_element(const AdamConsts<T>& k, T* p, const T* grad, T* m, T* v, int64_t i) {
  const T g = grad[i] + k.wd * p[i];
  const T mi = k.b1 * m[i] + k.c1 * g;
  const T vi = k.b2 * v[i] + k.c2 * g * g;
  m[i] = mi;
  v[i] = vi;
  p[i] -= k.step_size * mi / (std::sqrt(vi) / k.bc2_sqrt + k.eps);
}

// One parameter of a multi-tensor update: its four buffers (contiguous, n elements each) and its own step
// (a parameter that had no gradient in some step has taken fewer).
struct AdamSlot {
  void* p;
  const void* grad;
  void* m;
  void* v;
  int64_t n;
  int64_t step;
};

namespace cpu {
void adam(DType dt, void* p, const void* grad, void* m, void* v, int64_t n, const AdamArgs& a);
// Every slot updated as adam() would, with a.step replaced by the slot's step.
void adam_multi(DType dt, const AdamSlot* slots, int64_t count, const AdamArgs& a);
}  // namespace cpu
namespace cuda {
void adam(DType dt, void* p, const void* grad, void* m, void* v, int64_t n, const AdamArgs& a);
// The same in as few launches as fit (kernels/cuda/adam.cu): one per 24 slots instead of one per slot.
void adam_multi(DType dt, const AdamSlot* slots, int64_t count, const AdamArgs& a);
}  // namespace cuda

// p, grad, m, v: contiguous, same dtype, device and numel.
inline void adam(const Tensor& p, const Tensor& grad, const Tensor& m, const Tensor& v, const AdamArgs& a) {
  SANF_DEVICE_SWITCH(p.device(), "adam",
                     cpu::adam(p.dtype(), p.data_ptr(), grad.data_ptr(), m.data_ptr(), v.data_ptr(), p.numel(), a),
                     cuda::adam(p.dtype(), p.data_ptr(), grad.data_ptr(), m.data_ptr(), v.data_ptr(), p.numel(), a));
}

// The update of many parameters at once (nn::Adam::step), all of dtype dt on `device`: one kernel call, where
// one per parameter would cost a launch each on a GPU (a flow has ~140 parameters). a.step is ignored.
inline void adam_multi(Device device, DType dt, const std::vector<AdamSlot>& slots, const AdamArgs& a) {
  if (slots.empty()) return;
  SANF_DEVICE_SWITCH(device, "adam", cpu::adam_multi(dt, slots.data(), int64_t(slots.size()), a),
                     cuda::adam_multi(dt, slots.data(), int64_t(slots.size()), a));
}

}  // namespace sanf::kernels
