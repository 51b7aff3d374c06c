// tests/autograd/test_cross_entropy.cpp: the cross-entropy loss: its value against the composition it fuses
// (-mean of log_softmax at the labels), stability at large logits, finite-difference gradients (f64), and its
// argument errors.
#include <doctest/doctest.h>

#include <cmath>

#include "autograd/ops.h"
#include "tests/testing/gradcheck.h"

using namespace sanf;
using namespace sanf::testing;
using V = std::vector<Tensor>;

namespace {
Tensor labels_of(const std::vector<double>& v) { return Tensor::from_vector(v, {int64_t(v.size())}, DType::I64); }

// The loss written out from other ops: -mean_r log_softmax(x)[r, y_r], picking each row's label with a
// one-hot mask.
double reference_loss(const Tensor& x, const std::vector<double>& y) {
  const int64_t N = x.size(0), C = x.size(1);
  std::vector<double> onehot(size_t(N * C), 0.0);
  for (int64_t r = 0; r < N; ++r) onehot[size_t(r * C + int64_t(y[size_t(r)]))] = 1.0;
  return -mean(sum(mul(log_softmax(x, 1), Tensor::from_vector(onehot, {N, C}, x.dtype())), {1})).item();
}
}  // namespace

TEST_CASE("cross_entropy: value equals minus the mean log-softmax at the labels") {
  const std::vector<double> y = {2, 0, 4, 4, 1};
  for (DType dt : {DType::F32, DType::F64}) {
    const Tensor x = to(rnd({5, 6}, 301, 2.0), dt);
    const double got = cross_entropy(x, labels_of(y)).item(), want = reference_loss(x, y);
    CHECK(got == doctest::Approx(want).epsilon(dt == DType::F64 ? 1e-12 : 1e-6));
  }
  // A row whose label holds all the mass costs ~0; uniform logits cost log C.
  CHECK(cross_entropy(Tensor::from_vector({0, 0, 0, 0}, {1, 4}), labels_of({3})).item() ==
        doctest::Approx(std::log(4.0)));
  CHECK(cross_entropy(Tensor::from_vector({0, 50, 0}, {1, 3}, DType::F64), labels_of({1})).item() < 1e-20);
  CHECK(cross_entropy(Tensor::from_vector({0, 50, 0}, {1, 3}, DType::F64), labels_of({0})).item() ==
        doctest::Approx(50.0));
}

TEST_CASE("cross_entropy: large logits stay finite (max-subtracted log-sum-exp)") {
  // exp(1e4) overflows f32 and f64 alike; the shifted form gives log(1 + e) for label 0 (x_1 - x_0 = 1, the
  // other two terms vanish) and 2e4 + 1 + log(1 + 1/e) for label 3.
  const Tensor x = Tensor::from_vector({1e4, 1e4 + 1, 1e4 - 1e3, -1e4}, {1, 4});
  CHECK(cross_entropy(x, labels_of({0})).item() == doctest::Approx(std::log(1.0 + std::exp(1.0))).epsilon(1e-5));
  CHECK(cross_entropy(x, labels_of({3})).item() ==
        doctest::Approx(2e4 + 1.0 + std::log(1.0 + std::exp(-1.0))).epsilon(1e-6));
  Tensor w = clone(x).set_requires_grad(true);
  backward(cross_entropy(w, labels_of({1})));
  for (double g : w.grad().to_vector()) CHECK(std::isfinite(g));
}

TEST_CASE("gradcheck: cross_entropy") {
  const Tensor y = labels_of({1, 0, 3, 3});
  gradcheck("cross_entropy (4, 5)", [y](const V& v) { return cross_entropy(v[0], y); }, {rnd({4, 5}, 311)});
  gradcheck("cross_entropy of large logits", [y](const V& v) { return cross_entropy(v[0], y); },
            {rnd({4, 5}, 312, 3.0, 500.0)});
  gradcheck("cross_entropy of a transposed view", [y](const V& v) { return cross_entropy(transpose(v[0], 0, 1), y); },
            {rnd({5, 4}, 313)});
  gradcheck("cross_entropy one class",
            [](const V& v) {
              return cross_entropy(v[0], labels_of({0, 0}));
            },
            {rnd({2, 1}, 314)}, {.expect_nonzero = false});  // log softmax of one class is 0 whatever x is
  gradcheck("cross_entropy scaled downstream", [y](const V& v) { return mul(cross_entropy(v[0], y), 3.0); },
            {rnd({4, 5}, 315)});
}

TEST_CASE("cross_entropy: argument errors") {
  const Tensor x = zeros({3, 4});
  CHECK_THROWS_WITH_AS(cross_entropy(x, labels_of({0, 1, 4})),
                       doctest::Contains("[cross_entropy] label 4 (row 2) is out of range for 4 classes"), Error);
  CHECK_THROWS_WITH_AS(cross_entropy(x, labels_of({0, -1, 2})), doctest::Contains("label -1 (row 1)"), Error);
  CHECK_THROWS_WITH_AS(cross_entropy(x, labels_of({0, 1})), doctest::Contains("labels must be (N) i64 with N = 3"),
                       Error);
  CHECK_THROWS_WITH_AS(cross_entropy(x, Tensor::from_vector({0, 1, 2}, {3})), doctest::Contains("labels must be"),
                       Error);
  CHECK_THROWS_WITH_AS(cross_entropy(zeros({3}), labels_of({0, 1, 2})), doctest::Contains("logits must be (N, C)"),
                       Error);
  CHECK_THROWS_WITH_AS(cross_entropy(zeros({0, 4}), labels_of({})), doctest::Contains("logits must be (N, C)"), Error);
  CHECK_THROWS_WITH_AS(cross_entropy(to(x, DType::BF16), labels_of({0, 1, 2})), doctest::Contains("needs f32 or f64"),
                       Error);
}
