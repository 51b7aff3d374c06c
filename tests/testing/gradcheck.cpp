// tests/testing/gradcheck.cpp: central differences against backward().
#include "tests/testing/gradcheck.h"

#include <doctest/doctest.h>

#include <cmath>

namespace sanf::testing {

Tensor rnd(const Shape& shape, uint64_t seed, double scale, double shift, Device dev) {
  Generator g(seed);
  std::vector<double> v(static_cast<size_t>(numel(shape)));
  for (double& x : v) x = shift + scale * g.normal();
  return Tensor::from_vector(v, shape, DType::F64, dev);
}

double closeness(const Tensor& a, const Tensor& b, double rtol, double atol) {
  REQUIRE_MESSAGE(a.shape() == b.shape(), "shapes differ: ", shape_str(a.shape()), " vs ", shape_str(b.shape()));
  std::vector<double> va = a.to_vector(), vb = b.to_vector();
  double worst = 0;
  for (size_t i = 0; i < va.size(); ++i) {
    double r = std::fabs(va[i] - vb[i]) / (atol + rtol * std::fabs(vb[i]));
    if (!(r <= worst)) worst = r;  // NaN propagates as "not close"
    if (std::isnan(r)) return INFINITY;
  }
  return worst;
}

bool gradcheck(const std::string& name, const Fn& f, const std::vector<Tensor>& inputs, const GradcheckOptions& opt) {
  const size_t n = inputs.size();
  std::vector<std::vector<double>> vals(n);
  std::vector<bool> diff(n);
  for (size_t k = 0; k < n; ++k) {
    diff[k] = inputs[k].dtype() == DType::F64;
    REQUIRE_MESSAGE((diff[k] || !is_floating(inputs[k].dtype())), name, ": floating inputs must be f64");
    if (diff[k]) vals[k] = inputs[k].to_vector();
  }
  auto make = [&](size_t k, bool leaf) {
    if (!diff[k]) return inputs[k];
    Tensor t = Tensor::from_vector(vals[k], inputs[k].shape(), DType::F64, inputs[k].device());
    if (leaf) t.set_requires_grad(true);
    return t;
  };
  // Weights for the scalar loss, drawn once the output shape is known.
  Tensor W;
  auto loss = [&](const std::vector<Tensor>& xs) {
    Tensor out = f(xs);
    REQUIRE_MESSAGE(out.dtype() == DType::F64, name, ": output must be f64, got ", out.info());
    if (!W.defined()) W = rnd(out.shape(), opt.seed + 1, 1.0, 0.0, out.device());
    return sum(mul(out, W));
  };

  // Analytic.
  std::vector<Tensor> leaves(n);
  for (size_t k = 0; k < n; ++k) leaves[k] = make(k, true);
  Tensor L = loss(leaves);
  backward(L);

  // Numeric, element by element, and comparison.
  bool ok = true, any_nonzero = false;
  for (size_t k = 0; k < n; ++k) {
    if (!diff[k]) continue;
    Tensor g = leaves[k].grad();
    if (!g.defined()) {
      FAIL_CHECK(name, ": input ", k, " got no gradient");
      ok = false;
      continue;
    }
    std::vector<double> ga = g.to_vector();
    double worst = 0;
    size_t worst_i = 0;
    double worst_a = 0, worst_n = 0;
    for (size_t i = 0; i < vals[k].size(); ++i) {
      const double x0 = vals[k][i];
      std::vector<Tensor> xs(n);
      vals[k][i] = x0 + opt.eps;
      for (size_t j = 0; j < n; ++j) xs[j] = make(j, false);
      const double lp = loss(xs).item();
      vals[k][i] = x0 - opt.eps;
      for (size_t j = 0; j < n; ++j) xs[j] = make(j, false);
      const double lm = loss(xs).item();
      vals[k][i] = x0;
      const double num = (lp - lm) / (2 * opt.eps);
      const double err = std::fabs(ga[i] - num) / (opt.atol + opt.rtol * std::max(std::fabs(ga[i]), std::fabs(num)));
      if (ga[i] != 0.0) any_nonzero = true;
      if (!(err <= worst)) {
        worst = std::isnan(err) ? INFINITY : err;
        worst_i = i, worst_a = ga[i], worst_n = num;
      }
    }
    if (worst > 1.0) {
      FAIL_CHECK(name, ": input ", k, " ", shape_str(inputs[k].shape()), " element ", worst_i, ": backward ",
                 worst_a, " vs finite difference ", worst_n, " (error ", worst, "x tolerance)");
      ok = false;
    }
  }
  if (opt.expect_nonzero && !any_nonzero) {
    FAIL_CHECK(name, ": every gradient is zero, so the check proves nothing");
    ok = false;
  }
  CHECK_MESSAGE(ok, name);
  return ok;
}

double rel_l2(const Tensor& a, const Tensor& b) {
  const std::vector<double> x = a.to_vector(), y = b.to_vector();
  SANF_CHECK(x.size() == y.size(), "rel_l2: ", x.size(), " vs ", y.size(), " elements");
  double d = 0, n = 0;
  for (size_t i = 0; i < x.size(); ++i) d += (x[i] - y[i]) * (x[i] - y[i]), n += y[i] * y[i];
  return std::sqrt(d / n);
}

}  // namespace sanf::testing
