// tests/flows/test_flow.cpp: the flow's defining properties: it starts as a permutation, it inverts exactly,
// its log-det is log|det| of the true Jacobian; the no-CAFF and pooled-token variants; bad inputs.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "flows/flow.h"
#include "tests/flows/flow_testing.h"

using namespace sanf;
using namespace sanf::flows;
using namespace sanf::flows::testing_helpers;
using sanf::testing::closeness;
using sanf::testing::rnd;

TEST_CASE("flow: a fresh flow is a permutation of y with log-det 0") {
  FlowConfig cfg = small_config(16, 5, 4, 12, 4);
  Flow flow(cfg);
  Tensor y = randn({3, 16}), P = randn({3, 5, 16});
  Flow::Output o = flow.forward(y, P);
  CHECK(o.logdet.to_vector() == std::vector<double>(3, 0.0));
  for (int64_t b = 0; b < 3; ++b) {
    std::vector<double> zy = select(o.z, 0, b).to_vector(), yy = select(y, 0, b).to_vector();
    std::sort(zy.begin(), zy.end());
    std::sort(yy.begin(), yy.end());
    CHECK(zy == yy);
  }
  CHECK(closeness(nll(o), sum(square(y), {1}) * 0.5, 1e-6, 1e-6) <= 1.0);
  // The permutations are distinct draws, and really permute.
  CHECK(flow.layer(0).perm.to_vector() != flow.layer(1).perm.to_vector());
  CHECK(flow.layer(0).perm.to_vector() != arange(16).to_vector());
}

TEST_CASE("flow: inverse(forward(y)) == y and forward(inverse(z)) == z") {
  for (DType dt : {DType::F32, DType::F64}) {
    CAPTURE(dtype_name(dt));
    const double tol = dt == DType::F32 ? 1e-5 : 1e-11;
    Flow flow(small_config(16, 5, 4, 12, 4), dt);
    // Weights of scale 0.2 give |z| up to ~6 and log-dets ~5. (At 0.3, |z| reaches ~40 and the f32 rounding
    // of z alone, amplified back through exp(-c(s)), is ~2e-5 of y: the limit of f32, not of the inverse.)
    randomize(flow, 21, 0.2);
    Tensor y = to(rnd({6, 16}, 1), dt), P = to(rnd({6, 5, 16}, 2), dt);
    Flow::Output o = flow.forward(y, P);
    // The random parameters make the flow far from a permutation: logdet and z are non-trivial.
    CHECK(std::fabs(o.logdet.to_vector()[0]) > 0.1);
    CHECK(closeness(flow.inverse(o.z, P), y, tol, tol) <= 1.0);
    Tensor z = to(rnd({6, 16}, 3), dt);
    CHECK(closeness(flow.forward(flow.inverse(z, P), P).z, z, tol, tol) <= 1.0);
  }
}

TEST_CASE("flow: log-det equals log|det J| of the full Jacobian (D 8)") {
  for (bool no_caff : {false, true}) {
    CAPTURE(no_caff);
    FlowConfig cfg = small_config(8, 3, 3, 10, 2);
    cfg.no_caff = no_caff;
    Flow flow(cfg, DType::F64);
    randomize(flow, 31, 0.5);
    const int64_t B = 3, D = 8;
    Tensor y = rnd({B, D}, 4).set_requires_grad(true), P = rnd({B, 3, D}, 5);
    Flow::Output o = flow.forward(y, P);
    // Samples are independent, so row i of every sample's Jacobian is d(sum_b z[b, i]) / dy: D backward passes.
    std::vector<std::vector<double>> J(B, std::vector<double>(D * D));
    for (int64_t i = 0; i < D; ++i) {
      y.zero_grad();
      backward(sum(narrow(o.z, 1, i, 1)));
      std::vector<double> g = y.grad().to_vector();
      for (int64_t b = 0; b < B; ++b)
        for (int64_t j = 0; j < D; ++j) J[size_t(b)][size_t(i * D + j)] = g[size_t(b * D + j)];
    }
    std::vector<double> ld = o.logdet.to_vector();
    for (int64_t b = 0; b < B; ++b) {
      CAPTURE(b);
      CHECK(std::fabs(ld[size_t(b)]) > 0.1);  // far from 0: the check is not trivial
      CHECK(ld[size_t(b)] == doctest::Approx(log_abs_det(J[size_t(b)], int(D))).epsilon(1e-9));
    }
  }
}

TEST_CASE("flow: no_caff ignores the patch tokens and runs without them") {
  FlowConfig cfg = small_config(8, 4, 2, 8, 2);
  cfg.no_caff = true;
  Flow flow(cfg, DType::F64);
  randomize(flow, 41);
  Tensor y = rnd({4, 8}, 6);
  Flow::Output with = flow.forward(y, rnd({4, 4, 8}, 7)), other = flow.forward(y, rnd({4, 4, 8}, 8)),
               without = flow.forward(y, Tensor());
  CHECK(with.z.to_vector() == without.z.to_vector());
  CHECK(other.z.to_vector() == without.z.to_vector());
  CHECK(with.logdet.to_vector() == without.logdet.to_vector());
  CHECK(closeness(flow.inverse(without.z, Tensor()), y, 1e-11, 1e-11) <= 1.0);
  // With CAFF (same seed, same weights) the tokens do change the result.
  cfg.no_caff = false;
  Flow caff(cfg, DType::F64);
  randomize(caff, 41);
  CHECK(closeness(caff.forward(y, rnd({4, 4, 8}, 7)).z, caff.forward(y, rnd({4, 4, 8}, 8)).z, 1e-6, 1e-6) > 1.0);
}

TEST_CASE("flow: pool_grid averages the token grid before the layers") {
  // 4 x 4 grid pooled to 2 x 2 == the unpooled flow (same seed, same weights) on pre-pooled tokens.
  FlowConfig cfg = small_config(8, 16, 2, 8, 2);
  cfg.pool_grid = 2;
  Flow pooled(cfg, DType::F64);
  cfg.pool_grid = 0, cfg.tokens = 4;
  Flow plain(cfg, DType::F64);
  randomize(pooled, 51);
  randomize(plain, 51);
  Tensor y = rnd({3, 8}, 9), P = rnd({3, 16, 8}, 10);
  Tensor P4 = adaptive_avg_pool_tokens(P, 4, 4, 2, 2);
  Flow::Output a = pooled.forward(y, P), b = plain.forward(y, P4);
  CHECK(closeness(a.z, b.z, 1e-12, 1e-12) <= 1.0);
  CHECK(closeness(a.logdet, b.logdet, 1e-12, 1e-12) <= 1.0);
  CHECK(closeness(pooled.inverse(a.z, P), y, 1e-11, 1e-11) <= 1.0);
  // A 3 x 3 grid pooled to 2 x 2 (overlapping cells) runs too.
  FlowConfig odd = small_config(8, 9, 1, 8, 2);
  odd.pool_grid = 2;
  Flow f3(odd, DType::F64);
  CHECK(f3.forward(y, rnd({3, 9, 8}, 11)).z.shape() == Shape{3, 8});
}

TEST_CASE("flow: bad inputs are rejected with the shapes") {
  Flow flow(small_config(8, 3));
  Tensor y = randn({2, 8}), P = randn({2, 3, 8});
  CHECK_THROWS_WITH_AS(flow.forward(randn({2, 7}), P), doctest::Contains("[flow forward] y must be (B, 8), got (2, 7)"),
                       Error);
  CHECK_THROWS_WITH_AS(flow.forward(y, randn({2, 4, 8})),
                       doctest::Contains("patch tokens P must be (2, 3, 8) to go with y (2, 8), got (2, 4, 8)"), Error);
  CHECK_THROWS_WITH_AS(flow.forward(y, Tensor()), doctest::Contains("patch tokens P (B, 3, 8) are required"), Error);
  CHECK_THROWS_WITH_AS(flow.inverse(y, randn({3, 3, 8})), doctest::Contains("[flow inverse] patch tokens P must be"),
                       Error);
  CHECK_THROWS_WITH_AS(flow.forward(y, randn({2, 3, 8}, DType::F64)), doctest::Contains("P is f64"), Error);
  CHECK_THROWS_WITH_AS(flow.layer(0).forward(randn({2, 6}), Tensor()),
                       doctest::Contains("[FLL forward] input must be (B, 8), got (2, 6)"), Error);
  CHECK_THROWS_WITH_AS(flow.layer(1).inverse(y, randn({2, 3, 4})),
                       doctest::Contains("[FLL inverse] tokens must be (2, N, 8), got (2, 3, 4)"), Error);
}
