// tests/nn/test_adam.cpp: Adam against torch.optim.Adam (fixture from tests/fixtures/make_adam_fixture.py),
// and exact resumption from saved state.
#include <doctest/doctest.h>

#include <string>

#include "core/safetensors.h"
#include "nn/adam.h"
#include "nn/layers.h"
#include "tests/nn/adam_fixture_check.h"
#include "tests/testing/gradcheck.h"

using namespace sanf;

TEST_CASE("adam: matches torch.optim.Adam over 5 steps (two option sets)") {
  testing::check_adam_fixture(Device::CPU);
}

TEST_CASE("adam: saving and restoring the state resumes exactly") {
  Generator gen(3);
  nn::Linear a(4, 3, true, {&gen}), b(4, 3, true, {&gen});
  b.load_state_dict([&] {
    std::map<std::string, Tensor> m;
    for (auto& [n, t] : a.state_dict()) m[n] = t;
    return m;
  }(), "model a");
  nn::AdamOptions o{.lr = 0.05, .beta1 = 0.8, .beta2 = 0.8, .eps = 1e-4, .weight_decay = 1e-5};
  nn::Adam oa(a.named_parameters(), o);
  Tensor x = randn({5, 4}, DType::F32, Device::CPU, &gen);
  auto train = [&](nn::Linear& m, nn::Adam& opt, int steps) {
    for (int i = 0; i < steps; ++i) {
      opt.zero_grad();
      backward(sum(square(m.forward(x))));
      opt.step();
    }
  };
  train(a, oa, 3);
  // Snapshot a's model and optimiser, restore into b and a fresh optimiser, continue both.
  std::map<std::string, Tensor> snap;
  for (auto& [n, t] : a.state_dict()) snap[n] = clone(t);
  for (auto& [n, t] : oa.state_dict()) snap[n] = clone(t);
  std::map<std::string, Tensor> model_part;
  for (auto& [n, t] : a.state_dict()) model_part[n] = snap[n];
  b.load_state_dict(model_part, "snapshot");
  nn::Adam ob(b.named_parameters(), o);
  ob.load_state_dict(snap, "snapshot");
  train(a, oa, 2);
  train(b, ob, 2);
  CHECK(a.weight.to_vector() == b.weight.to_vector());
  CHECK(a.bias.to_vector() == b.bias.to_vector());
}

TEST_CASE("adam: bad options and bad state are rejected") {
  Tensor w = ones({2}).set_requires_grad(true);
  CHECK_THROWS_WITH_AS(nn::Adam({{"w", &w}}, {.lr = 1e-3, .beta1 = 1.0}), doctest::Contains("betas must lie in [0, 1)"),
                       Error);
  nn::Adam opt({{"w", &w}}, {});
  std::map<std::string, Tensor> bad = {{"adam.step.w", Tensor::from_vector({1}, {}, DType::I64)},
                                       {"adam.exp_avg.w", zeros({3})},
                                       {"adam.exp_avg_sq.w", zeros({3})}};
  CHECK_THROWS_WITH_AS(opt.load_state_dict(bad, "ckpt.safetensors"),
                       doctest::Contains("ckpt.safetensors: optimiser state of 'w' has shape (3,)"), Error);
}
