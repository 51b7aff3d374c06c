// tests/autograd/test_gradcheck_elementwise.cpp: finite-difference checks of the elementwise ops,
// including broadcasting and non-contiguous inputs.
#include <doctest/doctest.h>

#include <cmath>

#include "autograd/ops.h"
#include "tests/testing/gradcheck.h"

using namespace sanf;
using namespace sanf::testing;
using V = std::vector<Tensor>;

TEST_CASE("gradcheck: add sub mul div (same shape)") {
  Tensor a = rnd({3, 4}, 1), b = rnd({3, 4}, 2, 0.5, 2.0);  // b away from 0 for div
  gradcheck("add", [](const V& x) { return add(x[0], x[1]); }, {a, b});
  gradcheck("sub", [](const V& x) { return sub(x[0], x[1]); }, {a, b});
  gradcheck("mul", [](const V& x) { return mul(x[0], x[1]); }, {a, b});
  gradcheck("div", [](const V& x) { return div(x[0], x[1]); }, {a, b});
}

TEST_CASE("gradcheck: binary ops with broadcasting") {
  Tensor a = rnd({2, 3, 4}, 3), row = rnd({4}, 4, 0.5, 2.0), col = rnd({2, 1, 4}, 5, 0.5, 2.0), s = rnd({1}, 6, 0.5, 2.0);
  gradcheck("add bcast", [](const V& x) { return add(x[0], x[1]); }, {a, row});
  gradcheck("sub bcast", [](const V& x) { return sub(x[1], x[0]); }, {a, col});
  gradcheck("mul bcast", [](const V& x) { return mul(x[0], x[1]); }, {a, col});
  gradcheck("div bcast", [](const V& x) { return div(x[0], x[1]); }, {a, s});
  // Both operands broadcast: (3, 1) with (1, 4) -> (3, 4).
  gradcheck("mul outer", [](const V& x) { return mul(x[0], x[1]); }, {rnd({3, 1}, 7), rnd({1, 4}, 8)});
}

TEST_CASE("gradcheck: binary ops on non-contiguous inputs") {
  Tensor a = rnd({4, 3}, 9), b = rnd({3, 4}, 10, 0.5, 2.0);
  gradcheck("mul transposed", [](const V& x) { return mul(transpose(x[0], 0, 1), x[1]); }, {a, b});
  gradcheck("div narrow", [](const V& x) { return div(narrow(x[0], 1, 1, 2), transpose(narrow(x[1], 0, 1, 2), 0, 1)); }, {a, b});
}

TEST_CASE("gradcheck: unary ops") {
  Tensor x = rnd({3, 5}, 11);
  Tensor pos = rnd({3, 5}, 12, 0.3, 2.0);  // positive for log, sqrt, pow
  gradcheck("neg", [](const V& v) { return neg(v[0]); }, {x});
  gradcheck("exp", [](const V& v) { return exp(v[0]); }, {x});
  gradcheck("log", [](const V& v) { return log(v[0]); }, {pos});
  gradcheck("sqrt", [](const V& v) { return sqrt(v[0]); }, {pos});
  gradcheck("pow 3", [](const V& v) { return pow(v[0], 3.0); }, {x});
  gradcheck("pow -1.5", [](const V& v) { return pow(v[0], -1.5); }, {pos});
  gradcheck("atan", [](const V& v) { return atan(v[0]); }, {x});
  gradcheck("tanh", [](const V& v) { return tanh(v[0]); }, {x});
  gradcheck("gelu", [](const V& v) { return gelu(v[0]); }, {x});
  gradcheck("square", [](const V& v) { return square(v[0]); }, {x});
  // relu: keep inputs away from the kink at 0, where the derivative is undefined.
  Tensor away = rnd({3, 5}, 13);
  std::vector<double> v = away.to_vector();
  for (double& e : v) e += e >= 0 ? 0.1 : -0.1;
  gradcheck("relu", [](const V& t) { return relu(t[0]); }, {Tensor::from_vector(v, {3, 5}, DType::F64)});
}

TEST_CASE("gradcheck: scalar variants") {
  Tensor x = rnd({4}, 14, 0.3, 2.0);
  gradcheck("add scalar", [](const V& v) { return v[0] + 2.5; }, {x});
  gradcheck("rsub scalar", [](const V& v) { return 2.5 - v[0]; }, {x});
  gradcheck("mul scalar", [](const V& v) { return v[0] * -3.0; }, {x});
  gradcheck("div scalar", [](const V& v) { return v[0] / 4.0; }, {x});
  gradcheck("rdiv scalar", [](const V& v) { return 4.0 / v[0]; }, {x});
  gradcheck("unary on transposed view", [](const V& v) { return exp(transpose(v[0], 0, 1)); }, {rnd({2, 3}, 15)});
}

TEST_CASE("elementwise: values against the C library") {
  Tensor x = Tensor::from_vector({-1.5, 0.0, 0.7}, {3}, DType::F64);
  std::vector<double> g = gelu(x).to_vector();
  for (int i = 0; i < 3; ++i) {
    double v = x.to_vector()[size_t(i)];
    CHECK(g[size_t(i)] == doctest::Approx(0.5 * v * (1 + std::erf(v / std::sqrt(2.0)))).epsilon(1e-15));
  }
  CHECK(relu(x).to_vector() == std::vector<double>{0, 0, 0.7});
  CHECK(atan(x).to_vector()[0] == doctest::Approx(std::atan(-1.5)));
}
