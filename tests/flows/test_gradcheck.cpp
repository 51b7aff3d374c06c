// tests/flows/test_gradcheck.cpp: finite-difference gradient checks (f64) of the soft clamp, CAFF, the FLL
// and the flow's NLL, with respect to their inputs and to every parameter (set to random non-zero values).
#include <doctest/doctest.h>

#include <cmath>

#include "flows/flow.h"
#include "tests/flows/flow_testing.h"

using namespace sanf;
using namespace sanf::flows;
using namespace sanf::flows::testing_helpers;
using sanf::testing::gradcheck;
using sanf::testing::rnd;

namespace {
// Names of the parameters whose gradient of `loss` is all zeros (each one should matter). The key bias bk
// is skipped: it shifts every attention score by the same q.bk, which softmax ignores, so its gradient is
// zero up to rounding by construction (it exists because the method's K = Wk m + bk has it (docs/METHOD.md §3), as timm's qkv does).
std::vector<std::string> params_without_gradient(nn::Module& m, const Tensor& loss) {
  m.zero_grad();
  backward(loss);
  std::vector<std::string> out;
  for (auto& [name, p] : m.named_parameters()) {
    if (name.size() >= 11 && name.compare(name.size() - 11, 11, "attn.k.bias") == 0) continue;
    bool nonzero = false;
    if (p->grad().defined())
      for (double g : p->grad().to_vector()) nonzero = nonzero || g != 0.0;
    if (!nonzero) out.push_back(name);
  }
  m.zero_grad();
  return out;
}

// Gradcheck f(inputs..., parameters...) where f runs the module with the perturbed parameters.
void check_with_params(const std::string& name, nn::Module& m, std::vector<Tensor> inputs,
                       const std::function<Tensor(const std::vector<Tensor>&)>& f) {
  const size_t first = inputs.size();
  auto ptrs = param_ptrs(m);
  auto saved = param_values(m);
  for (const Tensor& p : saved) inputs.push_back(p);
  gradcheck(
      name,
      [&](const std::vector<Tensor>& xs) {
        with_params(ptrs, xs, first);
        return f(xs);
      },
      inputs);
  for (size_t i = 0; i < ptrs.size(); ++i) *ptrs[i] = Tensor(saved[i]).set_requires_grad(true);
}
}  // namespace

TEST_CASE("gradcheck: soft_clamp") {
  // Inputs well beyond alpha, where atan saturates, and near 0, where c(s) ~ s.
  gradcheck("soft_clamp", [](const std::vector<Tensor>& xs) { return soft_clamp(xs[0], 3.0); }, {rnd({4, 5}, 11, 5.0)});
  gradcheck("soft_clamp alpha 0.5", [](const std::vector<Tensor>& xs) { return soft_clamp(xs[0], 0.5); },
            {rnd({7}, 12, 2.0)});
  // Bounded by alpha, odd, slope 2/pi at 0.
  Tensor big = Tensor::from_vector({-1e6, -3, 0, 1e-4, 3, 1e6}, {6}, DType::F64);
  std::vector<double> c = soft_clamp(big, 3.0).to_vector();
  CHECK(c[0] > -3.0);
  CHECK(c[5] < 3.0);
  CHECK(c[5] == doctest::Approx(3.0).epsilon(1e-5));
  CHECK(c[1] == doctest::Approx(-c[4]));
  CHECK(c[2] == 0.0);
  CHECK(c[3] == doctest::Approx(2.0 / M_PI * 1e-4).epsilon(1e-8));  // slope 2/pi at 0
  CHECK(c[4] == doctest::Approx(6.0 / M_PI * std::atan(1.0)));
}

TEST_CASE("gradcheck: CAFF") {
  for (bool qkv_bias : {true, false}) {
    CAPTURE(qkv_bias);
    Generator gen(1);
    CAFF caff(4, 6, 2, qkv_bias, {&gen, DType::F64});
    randomize(caff, 2);
    Tensor h = rnd({2, 4}, 3), Q = rnd({2, 3, 4}, 4);
    {
      auto [s, t] = caff.forward(h, Q);
      CHECK(params_without_gradient(caff, sum(s * t)).empty());
    }
    check_with_params("CAFF", caff, {h, Q}, [&](const std::vector<Tensor>& xs) {
      auto [s, t] = caff.forward(xs[0], xs[1]);
      return concat({s, t}, 1);
    });
  }
  // Without tokens (the no-CAFF ablation) attention has one key: A = 1, so q and k do not matter.
  Generator gen(5);
  CAFF caff(4, 6, 2, true, {&gen, DType::F64});
  randomize(caff, 6);
  gradcheck("CAFF without tokens",
            [&](const std::vector<Tensor>& xs) {
              auto [s, t] = caff.forward(xs[0], Tensor());
              return concat({s, t}, 1);
            },
            {rnd({3, 4}, 7)});
  auto [s, t] = caff.forward(rnd({3, 4}, 7), Tensor());
  std::vector<std::string> unused = params_without_gradient(caff, sum(s * t));
  CHECK(unused == std::vector<std::string>{"attn.q.weight", "attn.q.bias", "attn.k.weight"});
}

TEST_CASE("gradcheck: FLL") {
  Generator gen(2);
  FLL fll(8, 6, 2, true, 3.0, {&gen, DType::F64});
  randomize(fll, 3);
  Tensor y = rnd({2, 8}, 8), P = rnd({2, 3, 8}, 9);
  {
    FLL::Output o = fll.forward(y, P);
    CHECK(params_without_gradient(fll, sum(o.y * o.y) + sum(o.logdet)).empty());
  }
  // Output and log-det together: (B, D + 1).
  check_with_params("FLL", fll, {y, P}, [&](const std::vector<Tensor>& xs) {
    FLL::Output o = fll.forward(xs[0], xs[1]);
    return concat({o.y, unsqueeze(o.logdet, 1)}, 1);
  });
  gradcheck("FLL inverse", [&](const std::vector<Tensor>& xs) { return fll.inverse(xs[0], xs[1]); }, {y, P});
}

TEST_CASE("gradcheck: flow NLL") {
  FlowConfig cfg = small_config();
  Flow flow(cfg, DType::F64);
  randomize(flow, 4);
  Tensor y = rnd({2, 8}, 10), P = rnd({2, 3, 8}, 11);
  CHECK(params_without_gradient(flow, sum(nll(flow.forward(y, P)))).empty());
  check_with_params("flow NLL", flow, {y, P},
                    [&](const std::vector<Tensor>& xs) { return nll(flow.forward(xs[0], xs[1])); });
  gradcheck("flow loss", [&](const std::vector<Tensor>& xs) { return nll_loss(flow.forward(xs[0], xs[1])); }, {y, P});
  gradcheck("flow mean z^2", [&](const std::vector<Tensor>& xs) { return mean_z2(flow.forward(xs[0], xs[1]).z); },
            {y, P});

  // With the 3 x 3 token grid pooled to 2 x 2 first: the gradient reaches P through the pooling.
  cfg.tokens = 9, cfg.pool_grid = 2;
  Flow pooled(cfg, DType::F64);
  randomize(pooled, 5);
  gradcheck("flow NLL, pooled tokens", [&](const std::vector<Tensor>& xs) { return nll(pooled.forward(xs[0], xs[1])); },
            {y, rnd({2, 9, 8}, 12)});
}
