// tests/autograd/test_gradcheck_shape.cpp: finite-difference checks of reductions and views.
#include <doctest/doctest.h>

#include "autograd/ops.h"
#include "tests/testing/gradcheck.h"

using namespace sanf;
using namespace sanf::testing;
using V = std::vector<Tensor>;

TEST_CASE("gradcheck: sum over dims, keepdim, all") {
  Tensor x = rnd({2, 3, 4}, 21);
  gradcheck("sum all", [](const V& v) { return sum(v[0]); }, {x});
  gradcheck("sum dim 1", [](const V& v) { return sum(v[0], {1}); }, {x});
  gradcheck("sum dims 0,2 keepdim", [](const V& v) { return sum(v[0], {0, 2}, true); }, {x});
  gradcheck("sum dim -1 of a transpose", [](const V& v) { return sum(transpose(v[0], 0, 2), {-1}); }, {x});
}

TEST_CASE("gradcheck: mean") {
  Tensor x = rnd({2, 3, 4}, 22);
  gradcheck("mean all", [](const V& v) { return mean(v[0]); }, {x});
  gradcheck("mean dims 1,2", [](const V& v) { return mean(v[0], {1, 2}); }, {x});
  gradcheck("mean dim 0 keepdim", [](const V& v) { return mean(v[0], {0}, true); }, {x});
}

TEST_CASE("gradcheck: max (values)") {
  // Distinct values so that the maximum is unique (the derivative exists).
  std::vector<double> v(24);
  Generator g(23);
  std::vector<int64_t> p = g.permutation(24);
  for (size_t i = 0; i < v.size(); ++i) v[i] = double(p[i]) * 0.1;
  Tensor x = Tensor::from_vector(v, {2, 3, 4}, DType::F64);
  gradcheck("max dim 2", [](const V& t) { return max(t[0], {2}); }, {x});
  gradcheck("max dim 1 keepdim", [](const V& t) { return max(t[0], {1}, true); }, {x});
  gradcheck("max dims 0,2", [](const V& t) { return max(t[0], {0, 2}); }, {x});
  gradcheck("max all", [](const V& t) { return max(t[0]); }, {x});
  CHECK(max(x).item() == doctest::Approx(2.3));
}

TEST_CASE("gradcheck: reshape") {
  gradcheck("reshape", [](const V& v) { return reshape(v[0], {4, -1}); }, {rnd({2, 3, 4}, 24)});
  gradcheck("reshape of permute", [](const V& v) { return reshape(permute(v[0], {2, 0, 1}), {8, 3}); },
            {rnd({2, 3, 4}, 25)});
  gradcheck("flatten", [](const V& v) { return flatten(v[0], 1); }, {rnd({2, 3, 4}, 26)});
  gradcheck("unsqueeze/squeeze", [](const V& v) { return squeeze(unsqueeze(v[0], 0), 0); }, {rnd({2, 3}, 27)});
}
TEST_CASE("gradcheck: transpose") {
  gradcheck("transpose", [](const V& v) { return transpose(v[0], 1, 2); }, {rnd({2, 3, 4}, 28)});
}
TEST_CASE("gradcheck: permute") {
  gradcheck("permute", [](const V& v) { return permute(v[0], {1, 2, 0}); }, {rnd({2, 3, 4}, 29)});
  gradcheck("permute of narrow", [](const V& v) { return permute(narrow(v[0], 1, 1, 2), {2, 0, 1}); },
            {rnd({2, 3, 4}, 30)});
}
TEST_CASE("gradcheck: narrow") {
  gradcheck("narrow", [](const V& v) { return narrow(v[0], 2, 1, 2); }, {rnd({2, 3, 4}, 31)});
  gradcheck("select", [](const V& v) { return select(v[0], 1, 2); }, {rnd({2, 3, 4}, 32)});
  gradcheck("narrow of transpose", [](const V& v) { return narrow(transpose(v[0], 0, 2), 0, 1, 2); },
            {rnd({2, 3, 4}, 33)});
}
TEST_CASE("gradcheck: expand") {
  gradcheck("expand", [](const V& v) { return expand(v[0], {5, 3, 4}); }, {rnd({3, 1}, 34)});
  gradcheck("expand of transpose", [](const V& v) { return expand(transpose(v[0], 0, 1), {2, 4, 3}); },
            {rnd({3, 4}, 35)});
}
TEST_CASE("gradcheck: contiguous and dtype conversion") {
  gradcheck("contiguous", [](const V& v) { return contiguous(transpose(v[0], 0, 1)); }, {rnd({2, 3, 4}, 36)});
  // Through f32 the function is exact only to f32 rounding, hence the wide step and tolerance.
  gradcheck("to f32 and back", [](const V& v) { return to(mul(to(v[0], DType::F32), 1.0), DType::F64); },
            {rnd({2, 3}, 37)}, GradcheckOptions{.eps = 1e-2, .rtol = 1e-3, .atol = 1e-4});
}

TEST_CASE("sum_to: the adjoint of broadcasting") {
  Tensor g = ones({2, 3, 4});
  CHECK(sum_to(g, {3, 1}).to_vector() == std::vector<double>{8, 8, 8});
  CHECK(sum_to(g, {4}).to_vector() == std::vector<double>{6, 6, 6, 6});
  CHECK_THROWS_WITH_AS(sum_to(g, {5}), doctest::Contains("[sum_to] cannot sum (2, 3, 4) down to (5,)"), Error);
}
