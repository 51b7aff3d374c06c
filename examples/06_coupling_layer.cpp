// examples/06_coupling_layer.cpp: one affine coupling layer of the SANF flow (flows::FLL): forward, inverse,
// and its log-determinant against a numerically computed Jacobian.
//
// The layer maps y (D numbers) to y' (D numbers), conditioned on patch tokens P (N x D) (flows/coupling.h):
//   permute y's channels, split them in halves [a, b]
//   s1, t1 = CAFF1(a, Pa);   b' = b * exp(c(s1)) + t1       b changes, a only steers
//   s2, t2 = CAFF2(b', Pb);  a' = a * exp(c(s2)) + t2       then the other way round
// where Pa and Pb are the same channel halves of the (permuted) patch tokens P as a and b are of y.
// What to notice:
//   * Invertible whatever the networks CAFF1/CAFF2 compute: s and t are never inverted, only recomputed
//     (a' and b' give back b' -> s2, t2 -> a, and then a -> s1, t1 -> b).
//   * The Jacobian is triangular (after the permutation), with diagonal exp(c(s1)), exp(c(s2)), so
//     log|det J| = sum c(s1) + sum c(s2): O(D) instead of the O(D^3) of a general determinant. That cheap,
//     exact log-determinant is what makes the flow's likelihood -log p(y) = 0.5 |z|^2 - log|det J| trainable.
#include <cmath>
#include <cstdio>

#include "examples/check.h"
#include "flows/coupling.h"

using namespace sanf;
using example::check;

namespace {
// log|det M| of a dense n x n matrix (row-major) by Gaussian elimination with partial pivoting.
double log_abs_det(std::vector<double> m, int64_t n) {
  double s = 0;
  for (int64_t c = 0; c < n; ++c) {
    int64_t p = c;
    for (int64_t r = c + 1; r < n; ++r)
      if (std::abs(m[size_t(r * n + c)]) > std::abs(m[size_t(p * n + c)])) p = r;
    for (int64_t k = 0; k < n; ++k) std::swap(m[size_t(c * n + k)], m[size_t(p * n + k)]);
    const double pivot = m[size_t(c * n + c)];
    s += std::log(std::abs(pivot));
    for (int64_t r = c + 1; r < n; ++r) {
      const double f = m[size_t(r * n + c)] / pivot;
      for (int64_t k = c; k < n; ++k) m[size_t(r * n + k)] -= f * m[size_t(c * n + k)];
    }
  }
  return s;
}

// Fill a parameter with N(0, std^2) draws, in place (no graph: it is a leaf's own storage).
void randomize(Tensor& t, double std, Generator& gen) {
  double* p = t.data<double>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = std * gen.normal();
}
}  // namespace

int main() {
  const int64_t D = 8, N = 3;  // y: 8 channels (halves of 4), conditioned on 3 patch tokens
  Generator gen(1);
  flows::FLL fll(D, /*hidden*/ 16, /*heads*/ 2, /*qkv_bias*/ true, /*alpha*/ 3.0, {&gen, DType::F64});
  // A fresh layer is the identity (the last Linear of each CAFF starts at zero, so s = t = 0): give those
  // weights random values so the layer actually transforms, as after some training.
  randomize(fll.caff1.fuse.weight, 0.3, gen);
  randomize(fll.caff2.fuse.weight, 0.3, gen);

  const Tensor y = randn({1, D}, DType::F64, Device::CPU, &gen);
  const Tensor P = randn({1, N, D}, DType::F64, Device::CPU, &gen);

  NoGradGuard no_grad;  // nothing here trains
  const flows::FLL::Output out = fll.forward(y, P);
  const std::vector<double> yv = y.to_vector(), zv = out.y.to_vector();
  std::printf("y  = ");
  for (double v : yv) std::printf("%+.3f ", v);
  std::printf("\nz  = ");
  for (double v : zv) std::printf("%+.3f ", v);

  // Inverse: back to y exactly (to rounding).
  const std::vector<double> back = fll.inverse(out.y, P).to_vector();
  double err = 0;
  for (size_t i = 0; i < yv.size(); ++i) err = std::max(err, std::abs(back[i] - yv[i]));
  std::printf("\ny' = inverse(z): max |y' - y| = %.1e\n", err);
  check(err < 1e-12, "the inverse reconstructs the input");

  // The Jacobian dz/dy by central differences, column by column, then its log|det|.
  const double eps = 1e-6;
  std::vector<double> J(size_t(D * D));
  for (int64_t j = 0; j < D; ++j) {
    std::vector<double> yp = yv, ym = yv;
    yp[size_t(j)] += eps, ym[size_t(j)] -= eps;
    const std::vector<double> zp = fll.forward(Tensor::from_vector(yp, {1, D}, DType::F64), P).y.to_vector();
    const std::vector<double> zm = fll.forward(Tensor::from_vector(ym, {1, D}, DType::F64), P).y.to_vector();
    for (int64_t i = 0; i < D; ++i) J[size_t(i * D + j)] = (zp[size_t(i)] - zm[size_t(i)]) / (2 * eps);
  }
  const double numeric = log_abs_det(J, D), layer = out.logdet.item();
  std::printf("log|det J|: the layer's sum c(s1) + sum c(s2) = %.9f, numerical Jacobian's = %.9f\n", layer, numeric);
  check(std::abs(layer) > 0.1,
        "the layer is not volume-preserving here (log|det| = %.3f), so the check means something", layer);
  check(std::abs(layer - numeric) < 1e-6, "the cheap log-determinant equals the numerical one (difference %.1e)",
        std::abs(layer - numeric));
  return example::finish("06_coupling_layer");
}
