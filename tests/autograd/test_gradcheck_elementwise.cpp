// tests/autograd/test_gradcheck_elementwise.cpp: finite-difference checks of the elementwise ops, one
// test case per op, each covering broadcasting and non-contiguous inputs where the op has them.
#include <doctest/doctest.h>

#include <cmath>

#include "autograd/ops.h"
#include "tests/testing/gradcheck.h"

using namespace sanf;
using namespace sanf::testing;
using V = std::vector<Tensor>;

namespace {
// The binary-op cases every binary op is checked on: same shape, broadcasting one or both operands, and
// non-contiguous views. `b` is kept away from 0 (for div).
void check_binary(const char* name, Tensor (*op)(const Tensor&, const Tensor&)) {
  std::string n = name;
  gradcheck(n + " same shape", [op](const V& x) { return op(x[0], x[1]); }, {rnd({3, 4}, 1), rnd({3, 4}, 2, 0.5, 2.0)});
  gradcheck(n + " broadcast row", [op](const V& x) { return op(x[0], x[1]); }, {rnd({2, 3, 4}, 3), rnd({4}, 4, 0.5, 2.0)});
  gradcheck(n + " broadcast middle", [op](const V& x) { return op(x[0], x[1]); },
            {rnd({2, 3, 4}, 5), rnd({2, 1, 4}, 6, 0.5, 2.0)});
  gradcheck(n + " broadcast first operand", [op](const V& x) { return op(x[1], x[0]); },
            {rnd({2, 3, 4}, 7, 0.5, 2.0), rnd({3, 1}, 8, 0.5, 2.0)});
  gradcheck(n + " outer (both broadcast)", [op](const V& x) { return op(x[0], x[1]); },
            {rnd({3, 1}, 9), rnd({1, 4}, 10, 0.5, 2.0)});
  gradcheck(n + " transposed views", [op](const V& x) { return op(transpose(x[0], 0, 1), narrow(x[1], 1, 1, 4)); },
            {rnd({4, 3}, 11), rnd({3, 6}, 12, 0.5, 2.0)});
}

// A unary op on a plain input and on a transposed view of it.
void check_unary(const char* name, Tensor (*op)(const Tensor&), const Tensor& x) {
  std::string n = name;
  gradcheck(n, [op](const V& v) { return op(v[0]); }, {x});
  gradcheck(n + " of transposed view", [op](const V& v) { return op(transpose(v[0], 0, 1)); }, {x});
}

Tensor positive() { return rnd({3, 5}, 13, 0.3, 2.0); }
}  // namespace

TEST_CASE("gradcheck: add") { check_binary("add", add); }
TEST_CASE("gradcheck: sub") { check_binary("sub", sub); }
TEST_CASE("gradcheck: mul") { check_binary("mul", mul); }
TEST_CASE("gradcheck: div") { check_binary("div", div); }
TEST_CASE("gradcheck: neg") { check_unary("neg", neg, rnd({3, 5}, 14)); }
TEST_CASE("gradcheck: exp") { check_unary("exp", exp, rnd({3, 5}, 15)); }
TEST_CASE("gradcheck: log") { check_unary("log", log, positive()); }
TEST_CASE("gradcheck: sqrt") { check_unary("sqrt", sqrt, positive()); }
TEST_CASE("gradcheck: atan") { check_unary("atan", atan, rnd({3, 5}, 16, 2.0)); }
TEST_CASE("gradcheck: tanh") { check_unary("tanh", tanh, rnd({3, 5}, 17)); }
TEST_CASE("gradcheck: gelu") { check_unary("gelu", gelu, rnd({3, 5}, 18, 2.0)); }
TEST_CASE("gradcheck: square") { check_unary("square", square, rnd({3, 5}, 19)); }

TEST_CASE("gradcheck: relu") {
  // Keep inputs away from the kink at 0, where the derivative does not exist.
  std::vector<double> v = rnd({3, 5}, 20).to_vector();
  for (double& e : v) e += e >= 0 ? 0.1 : -0.1;
  check_unary("relu", relu, Tensor::from_vector(v, {3, 5}, DType::F64));
}

TEST_CASE("gradcheck: pow") {
  gradcheck("pow 3", [](const V& v) { return pow(v[0], 3.0); }, {rnd({3, 5}, 21)});
  gradcheck("pow -1.5", [](const V& v) { return pow(v[0], -1.5); }, {positive()});
  gradcheck("pow 0.5 of transposed view", [](const V& v) { return pow(transpose(v[0], 0, 1), 0.5); }, {positive()});
}

TEST_CASE("gradcheck: scalar variants (x+s, s-x, x*s, x/s, s/x)") {
  Tensor x = rnd({4}, 22, 0.3, 2.0);
  gradcheck("add scalar", [](const V& v) { return v[0] + 2.5; }, {x});
  gradcheck("rsub scalar", [](const V& v) { return 2.5 - v[0]; }, {x});
  gradcheck("sub scalar", [](const V& v) { return v[0] - 2.5; }, {x});
  gradcheck("mul scalar", [](const V& v) { return v[0] * -3.0; }, {x});
  gradcheck("div scalar", [](const V& v) { return v[0] / 4.0; }, {x});
  gradcheck("rdiv scalar", [](const V& v) { return 4.0 / v[0]; }, {x});
}

TEST_CASE("elementwise: values against the C library") {
  Tensor x = Tensor::from_vector({-1.5, 0.0, 0.7}, {3}, DType::F64);
  std::vector<double> xv = x.to_vector(), g = gelu(x).to_vector();
  for (size_t i = 0; i < 3; ++i)
    CHECK(g[i] == doctest::Approx(0.5 * xv[i] * (1 + std::erf(xv[i] / std::sqrt(2.0)))).epsilon(1e-15));
  CHECK(relu(x).to_vector() == std::vector<double>{0, 0, 0.7});
  CHECK(atan(x).to_vector()[0] == doctest::Approx(std::atan(-1.5)));
  CHECK(pow(Tensor::from_vector({2.0}, {1}, DType::F64), 10).item() == 1024.0);
}
