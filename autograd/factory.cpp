// autograd/factory.cpp: tensors made from nothing: constants, ranges and random draws.
//
// randn and rand fill the tensor on its own device (kernels/random.h): the host Generator's stream on the
// CPU, cuRAND Philox seeded from the Generator on CUDA (so the two devices give different numbers for one
// seed). trunc_normal, the initialisers' draw, is rejection sampling and stays on the host for every device:
// initialisation with a seed gives the same weights on the CPU and on CUDA.
#include <cmath>

#include "autograd/ops.h"
#include "kernels/copy.h"
#include "kernels/random.h"

namespace sanf {

Tensor full(const Shape& shape, double value, DType dt, Device dev) {
  Tensor t = Tensor::empty(shape, dt, dev);
  kernels::fill(t, value);
  return t;
}
Tensor zeros(const Shape& shape, DType dt, Device dev) { return full(shape, 0.0, dt, dev); }
Tensor ones(const Shape& shape, DType dt, Device dev) { return full(shape, 1.0, dt, dev); }
Tensor zeros_like(const Tensor& x) { return zeros(x.shape(), x.dtype(), x.device()); }

Tensor arange(int64_t n, DType dt, Device dev) {
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = double(i);
  return Tensor::from_vector(v, {n}, dt, dev);
}

Tensor randn(const Shape& shape, DType dt, Device dev, Generator* gen) {
  Tensor t = Tensor::empty(shape, dt, dev);
  kernels::fill_normal(t, gen ? *gen : default_generator());
  return t;
}
Tensor rand(const Shape& shape, DType dt, Device dev, Generator* gen) {
  Tensor t = Tensor::empty(shape, dt, dev);
  kernels::fill_uniform(t, gen ? *gen : default_generator());
  return t;
}
Tensor trunc_normal(const Shape& shape, double std, double lo, double hi, DType dt, Device dev, Generator* gen) {
  Generator& g = gen ? *gen : default_generator();
  std::vector<double> v(static_cast<size_t>(numel(shape)));
  for (double& x : v) x = g.trunc_normal(0.0, std, lo, hi);
  return Tensor::from_vector(v, shape, dt, dev);  // drawn on the host, then moved to dev
}

}  // namespace sanf
