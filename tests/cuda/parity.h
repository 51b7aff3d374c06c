// tests/cuda/parity.h: helpers of the CPU-CUDA parity tests.
//
// SANF_SKIP_WITHOUT_CUDA() opens every CUDA test: without a device (or in a build without CUDA) the test
// prints "SKIPPED: ..." and returns, so a skipped test is visible in the log and never silently absent.
//
// check_parity(name, f, inputs, dt) runs f twice, on CPU leaves and on CUDA leaves holding the same values
// (floating inputs converted to dt; integer inputs, e.g. indices, passed through, moved to CUDA for the CUDA
// run), compares the outputs, then backpropagates L = sum(out * W) (W a fixed random tensor, the same on
// both devices) and compares every floating input's gradient. The tolerance is scaled to the magnitude of
// the reference: an element passes when |cuda - cpu| <= rtol * |cpu| + atol_rel * max|cpu|, so values
// that come from cancellation (small results of large terms) are judged against the size of the terms.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "tests/testing/gradcheck.h"

#define SANF_SKIP_WITHOUT_CUDA()                                                                    \
  do {                                                                                              \
    if (!::sanf::cuda_available()) {                                                                \
      MESSAGE("SKIPPED: no CUDA device (or a build without CUDA); this CPU-CUDA test did not run"); \
      return;                                                                                       \
    }                                                                                               \
  } while (0)

namespace sanf::cuda_testing {

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

struct Tol {
  double rtol, atol_rel;
};
// f32: a few f32 roundings apart, also after sums of hundreds of terms; f64: the same in f64.
inline Tol tol_for(DType dt) { return dt == DType::F64 ? Tol{1e-10, 1e-12} : Tol{1e-4, 1e-5}; }

// Checks got (any device) against want (the CPU reference) elementwise; reports the worst element.
inline bool expect_close(const std::string& what, const Tensor& got, const Tensor& want, Tol tol) {
  if (got.shape() != want.shape()) {
    FAIL_CHECK(what, ": shapes differ: ", shape_str(got.shape()), " (cuda) vs ", shape_str(want.shape()), " (cpu)");
    return false;
  }
  const std::vector<double> g = got.to_vector(), w = want.to_vector();
  double scale = 0;
  for (double v : w)
    if (std::isfinite(v)) scale = std::max(scale, std::fabs(v));
  const double atol = std::max(tol.atol_rel * scale, 1e-300);
  double worst = 0;
  size_t worst_i = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    const bool same_special = (std::isnan(g[i]) && std::isnan(w[i])) || (std::isinf(w[i]) && g[i] == w[i]);
    double r = same_special ? 0.0 : std::fabs(g[i] - w[i]) / (atol + tol.rtol * std::fabs(w[i]));
    if (std::isnan(r)) r = INFINITY;
    if (r > worst) worst = r, worst_i = i;
  }
  if (worst > 1.0) {
    FAIL_CHECK(what, ": element ", worst_i, " of ", shape_str(want.shape()), ": cuda ", g[worst_i], " vs cpu ",
               w[worst_i], " (", worst, "x the tolerance rtol ", tol.rtol, " + ", tol.atol_rel, " * max|cpu| ", scale,
               ")");
    return false;
  }
  return true;
}

// Bitwise-equal values (for copies, fills, conversions and gathers, which do no arithmetic).
inline bool expect_equal(const std::string& what, const Tensor& got, const Tensor& want) {
  if (got.shape() != want.shape() || got.dtype() != want.dtype()) {
    FAIL_CHECK(what, ": got ", got.info(), ", want ", want.info());
    return false;
  }
  const std::vector<double> g = got.to_vector(), w = want.to_vector();
  for (size_t i = 0; i < g.size(); ++i) {
    if (g[i] != w[i] && !(std::isnan(g[i]) && std::isnan(w[i]))) {
      FAIL_CHECK(what, ": element ", i, " of ", shape_str(want.shape()), ": cuda ", g[i], " vs cpu ", w[i]);
      return false;
    }
  }
  return true;
}

// A leaf on `dev` holding x's values (converted to dt if floating), requiring grad if floating and asked.
inline Tensor make_leaf(const Tensor& x, DType dt, Device dev, bool grad) {
  const bool floating = is_floating(x.dtype());
  Tensor t = Tensor::from_vector(x.to_vector(), x.shape(), floating ? dt : x.dtype(), dev);
  if (floating && grad) t.set_requires_grad(true);
  return t;
}

inline void check_parity(const std::string& name, const Fn& f, const std::vector<Tensor>& inputs, DType dt = DType::F32,
                         bool grads = true) {
  INFO("parity case: ", name, " (", dtype_name(dt), ")");
  std::vector<Tensor> cpu_in, cuda_in;
  for (const Tensor& x : inputs) {
    cpu_in.push_back(make_leaf(x, dt, Device::CPU, grads));
    cuda_in.push_back(make_leaf(x, dt, Device::CUDA, grads));
  }
  const Tensor want = f(cpu_in);
  const Tensor got = f(cuda_in);
  CHECK_MESSAGE(got.device() == Device::CUDA, name, ": output is on ", device_name(got.device()));
  CHECK_MESSAGE(got.dtype() == want.dtype(), name, ": dtype ", dtype_name(got.dtype()), " vs ",
                dtype_name(want.dtype()));
  const Tol tol = tol_for(dt);
  expect_close(name + " forward", got, want, tol);
  if (!grads || !is_floating(want.dtype()) || want.numel() == 0) return;

  const Tensor W = testing::rnd(want.shape(), 4242);
  backward(sum(mul(want, to(W, want.dtype()))));
  backward(sum(mul(got, to(to(W, Device::CUDA), got.dtype()))));
  for (size_t k = 0; k < inputs.size(); ++k) {
    if (!cpu_in[k].requires_grad()) continue;
    const Tensor gw = cpu_in[k].grad(), gg = cuda_in[k].grad();
    const std::string what = name + " gradient of input " + std::to_string(k);
    if (!gw.defined() && !gg.defined()) continue;  // the output does not depend on this input
    if (gw.defined() != gg.defined()) {
      FAIL_CHECK(what, ": defined on ", gw.defined() ? "cpu" : "cuda", " only");
      continue;
    }
    CHECK_MESSAGE(gg.device() == Device::CUDA, what, " is on ", device_name(gg.device()));
    expect_close(what, gg, gw, tol);
  }
}

// Both compute dtypes: f32 (the default) and f64.
inline void check_parity_both(const std::string& name, const Fn& f, const std::vector<Tensor>& inputs) {
  check_parity(name, f, inputs, DType::F32);
  check_parity(name, f, inputs, DType::F64);
}

// Random f64 input on the host (converted by check_parity).
inline Tensor rin(const Shape& shape, uint64_t seed, double scale = 1.0, double shift = 0.0) {
  return testing::rnd(shape, seed, scale, shift);
}

// An i64 index tensor on the host.
inline Tensor index_tensor(const std::vector<double>& v) {
  return Tensor::from_vector(v, {int64_t(v.size())}, DType::I64);
}

}  // namespace sanf::cuda_testing
