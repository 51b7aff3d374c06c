// autograd/factory.cpp: tensors made from nothing: constants, ranges and random draws.
#include <cmath>

#include "autograd/ops.h"
#include "kernels/copy.h"

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

namespace {
template <typename F>
Tensor draw(const Shape& shape, DType dt, Device dev, Generator* gen, F&& f) {
  Generator& g = gen ? *gen : default_generator();
  std::vector<double> v(static_cast<size_t>(numel(shape)));
  for (double& x : v) x = f(g);
  return Tensor::from_vector(v, shape, dt, dev);
}
}  // namespace

Tensor randn(const Shape& shape, DType dt, Device dev, Generator* gen) {
  return draw(shape, dt, dev, gen, [](Generator& g) { return g.normal(); });
}
Tensor rand(const Shape& shape, DType dt, Device dev, Generator* gen) {
  return draw(shape, dt, dev, gen, [](Generator& g) { return g.uniform(); });
}
Tensor trunc_normal(const Shape& shape, double std, double lo, double hi, DType dt, Device dev, Generator* gen) {
  return draw(shape, dt, dev, gen, [&](Generator& g) { return g.trunc_normal(0.0, std, lo, hi); });
}

}  // namespace sanf
