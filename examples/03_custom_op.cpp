// examples/03_custom_op.cpp: adding your own differentiable op, outside the library's sources.
//
// The op: softplus(x) = log(1 + exp(x)), elementwise, a smooth ReLU.
//   forward   y = max(x, 0) + log1p(exp(-|x|))     the stable form: exp never sees a large positive number
//   backward  dx = dy * sigmoid(x)                 sigmoid(x) = 1 / (1 + exp(-x)) = d softplus / dx
// The backward is a vector-Jacobian product: given dy (the gradient of some scalar loss with respect to y),
// return dx = J^T dy. For an elementwise op J is diagonal, so it is a product element by element.
//
// An op is wired into the engine exactly as the library's own (autograd/ops/*.cpp) are, with two public
// functions of autograd/engine.h:
//   record(name, out, inputs, closure)   attach a Node to `out` when grad mode is on and an input needs grad;
//                                        the closure maps dy to one gradient per input
//   detach(t)                            t's storage without its history, to keep in a closure (keeping the
//                                        output itself would make a reference cycle out -> node -> out)
// Then it is checked the way the library checks every op: central finite differences in f64.
#include <cmath>
#include <cstdio>

#include "autograd/ops.h"
#include "examples/check.h"

using namespace sanf;
using example::check;

// ---- the op -------------------------------------------------------------------------------------------
namespace {

// The compute, on a contiguous CPU tensor of f32 or f64: a plain loop (what a kernel in kernels/cpu/ does).
template <typename T>
void softplus_loop(const T* x, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::max(x[i], T(0)) + std::log1p(std::exp(-std::abs(x[i])));
}
template <typename T>
void softplus_backward_loop(const T* x, const T* dy, T* dx, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] / (T(1) + std::exp(-x[i]));
}

}  // namespace

Tensor softplus(const Tensor& x_in) {
  // Validate at entry, naming the op (as the library's ops do).
  SANF_CHECK(x_in.device() == Device::CPU, "[softplus] this example op runs on the CPU only, got ", x_in.info());
  SANF_CHECK(x_in.dtype() == DType::F32 || x_in.dtype() == DType::F64, "[softplus] needs f32 or f64, got ",
             x_in.info());
  Tensor x = contiguous(x_in);  // a strided view is copied once; the loop wants plain arrays
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  if (x.dtype() == DType::F32)
    softplus_loop(x.data<float>(), y.data<float>(), x.numel());
  else
    softplus_loop(x.data<double>(), y.data<double>(), x.numel());

  // The backward needs x (for the sigmoid): keep a detached handle to its storage.
  return record("softplus", y, {x_in}, [xs = detach(x)](const Tensor& g, const std::vector<bool>&) {
    Tensor dy = contiguous(g);  // the incoming gradient may be any view (e.g. an expanded scalar)
    Tensor dx = Tensor::empty(xs.shape(), xs.dtype());
    if (xs.dtype() == DType::F32)
      softplus_backward_loop(xs.data<float>(), dy.data<float>(), dx.data<float>(), xs.numel());
    else
      softplus_backward_loop(xs.data<double>(), dy.data<double>(), dx.data<double>(), xs.numel());
    return std::vector<Tensor>{dx};  // one gradient per input, with the input's shape, dtype and device
  });
}

// ---- a finite-difference gradient check (f64) -------------------------------------------------------------
// For L(x) = sum(f(x) * w) with a fixed random w (so every output element counts, with its own weight),
// compare dL/dx_i from backward() with (L(x + eps e_i) - L(x - eps e_i)) / (2 eps). Returns the worst
// relative error.
double gradcheck(const std::function<Tensor(const Tensor&)>& f, const Tensor& x0) {
  Generator gen(3);
  const Tensor w = randn(f(x0).shape(), DType::F64, Device::CPU, &gen);
  Tensor x = clone(x0).set_requires_grad(true);
  backward(sum(mul(f(x), w)));
  const std::vector<double> analytic = x.grad().to_vector();

  const double eps = 1e-6;
  double worst = 0;
  std::vector<double> v = x0.to_vector();
  for (size_t i = 0; i < v.size(); ++i) {
    NoGradGuard no_grad;  // probing records no graph
    auto L = [&](double xi) {
      std::vector<double> p = v;
      p[i] = xi;
      return sum(mul(f(Tensor::from_vector(p, x0.shape(), DType::F64)), w)).item();
    };
    const double numeric = (L(v[i] + eps) - L(v[i] - eps)) / (2 * eps);
    worst = std::max(worst, std::abs(analytic[i] - numeric) / (1e-8 + std::abs(numeric)));
  }
  return worst;
}

int main() {
  // Values, including large |x| where the naive log(1 + exp(x)) overflows in f32.
  Tensor x = Tensor::from_vector({-100, -2, 0, 0.5, 3, 100}, {6});
  const std::vector<double> y = softplus(x).to_vector();
  std::printf("softplus(-100, -2, 0, 0.5, 3, 100) = %g %g %g %g %g %g\n", y[0], y[1], y[2], y[3], y[4], y[5]);
  check(std::abs(y[2] - std::log(2.0)) < 1e-7 && y[5] == 100.0f && y[0] > 0 && y[0] < 1e-40,
        "softplus(0) = log 2, softplus(100) = 100, softplus(-100) tiny and positive (no overflow)");

  // The engine calls our closure: dy/dx of sum(softplus(x)) is sigmoid(x).
  Tensor xg = Tensor::from_vector({-1, 0, 2}, {3}, DType::F64).set_requires_grad(true);
  backward(sum(softplus(xg)));
  const std::vector<double> g = xg.grad().to_vector();
  std::printf("d/dx sum(softplus(x)) at -1, 0, 2 = %.6f %.6f %.6f (sigmoid)\n", g[0], g[1], g[2]);
  check(std::abs(g[1] - 0.5) < 1e-15 && std::abs(g[2] - 1 / (1 + std::exp(-2.0))) < 1e-15,
        "the engine ran our backward: gradient = sigmoid(x)");

  // Finite differences, f64: the op alone, through a transposed (non-contiguous) view, and composed with
  // library ops on both sides (matmul before it, a broadcast multiply after it).
  Generator gen(11);
  const Tensor x0 = randn({3, 4}, DType::F64, Device::CPU, &gen);
  const Tensor W = randn({4, 5}, DType::F64, Device::CPU, &gen);
  const double e1 = gradcheck([](const Tensor& t) { return softplus(t); }, x0);
  const double e2 = gradcheck([](const Tensor& t) { return softplus(transpose(t, 0, 1)); }, x0);
  const double e3 = gradcheck([&](const Tensor& t) { return mul(softplus(matmul(t, W)), 2.5); }, x0);
  std::printf("gradcheck worst relative errors: %.1e (alone), %.1e (transposed), %.1e (composed)\n", e1, e2, e3);
  check(e1 < 1e-6 && e2 < 1e-6 && e3 < 1e-6, "analytic gradients match central differences");

  // The check can fail: a wrong backward (say, forgetting the sigmoid, dx = dy) is caught.
  auto wrong = [](const Tensor& t) {
    Tensor y = softplus(t);
    return record("softplus (wrong backward)", detach(y), {t},
                  [](const Tensor& dy, const std::vector<bool>&) { return std::vector<Tensor>{contiguous(dy)}; });
  };
  const double e4 = gradcheck(wrong, x0);
  check(e4 > 1e-2, "a wrong backward is caught (worst relative error %.2f)", e4);
  return example::finish("03_custom_op");
}
