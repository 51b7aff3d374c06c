// autograd/ops/copy.cpp: contiguous, clone, and conversions between dtypes and devices.
//
// All are the identity on values, so each backward passes the gradient straight back, converted to the
// input's dtype or device.
#include "autograd/ops/common.h"

namespace sanf {

using namespace ops_detail;

Tensor clone(const Tensor& x) {
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  kernels::copy(out, x);
  return record("clone", out, {x}, [](const Tensor& g, const std::vector<bool>&) -> std::vector<Tensor> {
    return {g};
  });
}

Tensor contiguous(const Tensor& x) { return x.is_contiguous() ? x : clone(x); }

Tensor to(const Tensor& x, DType dt) {
  if (x.dtype() == dt) return x;
  Tensor out = Tensor::empty(x.shape(), dt, x.device());
  kernels::copy(out, x);
  if (!is_floating(dt)) return out;  // integer results are not differentiable
  return record("to(dtype)", out, {x}, [src = x.dtype()](const Tensor& g, const std::vector<bool>&)
                                           -> std::vector<Tensor> { return {to(g, src)}; });
}

Tensor to(const Tensor& x, Device dev) {
  if (x.device() == dev) return x;
  Tensor out = dense(x).copy_to_device(dev);
  return record("to(device)", out, {x}, [src = x.device()](const Tensor& g, const std::vector<bool>&)
                                            -> std::vector<Tensor> { return {to(g, src)}; });
}

}  // namespace sanf
