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

namespace sanf::kernels {

struct AdamArgs {
  double lr, beta1, beta2, eps, weight_decay;
  int64_t step;  // already incremented: 1 on the first update
};

namespace cpu {
void adam(DType dt, void* p, const void* grad, void* m, void* v, int64_t n, const AdamArgs& a);
}
namespace cuda {
void adam(DType dt, void* p, const void* grad, void* m, void* v, int64_t n, const AdamArgs& a);
}

// p, grad, m, v: contiguous, same dtype, device and numel.
inline void adam(const Tensor& p, const Tensor& grad, const Tensor& m, const Tensor& v, const AdamArgs& a) {
  SANF_DEVICE_SWITCH(p.device(), "adam",
                     cpu::adam(p.dtype(), p.data_ptr(), grad.data_ptr(), m.data_ptr(), v.data_ptr(), p.numel(), a),
                     cuda::adam(p.dtype(), p.data_ptr(), grad.data_ptr(), m.data_ptr(), v.data_ptr(), p.numel(), a));
}

}  // namespace sanf::kernels
