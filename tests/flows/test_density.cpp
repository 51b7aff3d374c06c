// tests/flows/test_density.cpp: density sanity. A flow trained by maximum likelihood on samples of a known
// correlated Gaussian must reach a held-out NLL close to the Gaussian's entropy, the lowest any model can
// reach in expectation (held-out NLL = entropy + KL(true || model)).
//
// y = mu + M e, e ~ N(0, I_D): Sigma = M M^T and the entropy is
//   H = (D/2) log(2 pi e) + log|det M|
// The flow's nll() leaves out (D/2) log(2 pi); the test adds it back to compare like with like. The
// conditioning patch tokens are random and independent of y, so the best the flow can do is ignore them.
#include <doctest/doctest.h>

#include <chrono>
#include <cmath>

#include "flows/flow.h"
#include "tests/flows/flow_testing.h"

using namespace sanf;
using namespace sanf::flows;
using namespace sanf::flows::testing_helpers;

TEST_CASE("flow density: held-out NLL reaches the entropy of a correlated Gaussian") {
  const int64_t D = 16, N = 4, B = 128, steps = 600, held_out = 8192;
  Generator gen(2024);
  // M: a random mixing matrix (strong correlations, scales from about 0.1 to 2), mu: a random mean.
  std::vector<double> Mv(size_t(D * D));
  for (int64_t i = 0; i < D; ++i)
    for (int64_t j = 0; j < D; ++j) Mv[size_t(i * D + j)] = (i == j ? 0.3 : 0.0) + 0.35 * gen.normal();
  Tensor M = Tensor::from_vector(Mv, {D, D});
  Tensor mu = randn({D}, DType::F32, Device::CPU, &gen);
  const double entropy = 0.5 * double(D) * std::log(2 * M_PI * M_E) + log_abs_det(Mv, int(D));
  auto sample = [&](int64_t n) {
    return std::pair{matmul(randn({n, D}, DType::F32, Device::CPU, &gen), transpose(M, 0, 1)) + mu,
                     randn({n, N, D}, DType::F32, Device::CPU, &gen)};
  };

  FlowConfig cfg;
  cfg.dim = D, cfg.tokens = N, cfg.layers = 4, cfg.hidden = 32, cfg.heads = 4, cfg.seed = 1;
  Flow flow(cfg);
  nn::Adam opt(flow.named_parameters(), {.lr = 4e-3});
  auto t0 = std::chrono::steady_clock::now();
  for (int64_t step = 0; step < steps; ++step) {
    if (step == steps * 2 / 3) opt.options().lr = 1e-3;  // a short, lower-rate finish
    auto [y, P] = sample(B);                             // fresh samples every step: no overfitting to judge
    opt.zero_grad();
    backward(nll_loss(flow.forward(y, P)));
    opt.step();
  }
  const double train_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  NoGradGuard ng;
  auto [y, P] = sample(held_out);
  const double nll_held_out = mean(nll(flow.forward(y, P))).item() + 0.5 * double(D) * std::log(2 * M_PI);
  const double gap = (nll_held_out - entropy) / double(D);  // nats per dimension
  MESSAGE("entropy ", entropy / double(D), " nats/dim, held-out NLL ", nll_held_out / double(D), " nats/dim, gap ", gap,
          " (", steps, " steps in ", train_s, " s)");
  // Standard error of the held-out mean: sqrt(D/2 / held_out) / D ~ 0.0028 nats/dim, so a gap below
  // -0.01 would mean a wrong log-det or constant, not luck.
  CHECK(gap > -0.01);
  CHECK(gap < 0.05);
}
