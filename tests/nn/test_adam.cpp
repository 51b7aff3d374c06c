// tests/nn/test_adam.cpp: Adam against torch.optim.Adam (fixture from tests/fixtures/make_adam_fixture.py),
// exact resumption from saved state, and the multi-tensor update against the per-tensor one.
#include <doctest/doctest.h>

#include <array>
#include <string>
#include <vector>

#include "core/safetensors.h"
#include "kernels/adam.h"
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

TEST_CASE("adam: the multi-tensor update is the per-tensor update, bit for bit") {
  // 30 parameters (more than one CUDA launch's 24), one of them empty, each at its own step.
  const kernels::AdamArgs a{0.01, 0.9, 0.999, 1e-8, 1e-4, 0};
  for (DType dt : {DType::F32, DType::F64}) {
    INFO(std::string(dtype_name(dt)));
    std::vector<std::array<Tensor, 4>> one, multi;  // p, grad, m, v
    std::vector<kernels::AdamSlot> slots;
    for (int i = 0; i < 30; ++i) {
      const int64_t n = i == 7 ? 0 : 1 + 37 * i;
      std::array<Tensor, 4> t;
      for (int k = 0; k < 4; ++k) t[size_t(k)] = to(testing::rnd({n}, uint64_t(100 * i + k), k == 3 ? 0.1 : 1.0), dt);
      t[3] = mul(t[3], t[3]);  // v >= 0
      one.push_back(t);
      multi.push_back({clone(t[0]), t[1], clone(t[2]), clone(t[3])});
      const auto& u = multi.back();
      slots.push_back({u[0].data_ptr(), u[1].data_ptr(), u[2].data_ptr(), u[3].data_ptr(), n, 1 + i % 5});
    }
    kernels::adam_multi(Device::CPU, dt, slots, a);
    for (size_t i = 0; i < one.size(); ++i) {
      kernels::AdamArgs ai = a;
      ai.step = slots[i].step;
      kernels::adam(one[i][0], one[i][1], one[i][2], one[i][3], ai);
      CHECK(one[i][0].to_vector() == multi[i][0].to_vector());
      CHECK(one[i][2].to_vector() == multi[i][2].to_vector());
      CHECK(one[i][3].to_vector() == multi[i][3].to_vector());
    }
  }
}

TEST_CASE("adam: a parameter without a gradient in a step keeps its own step count") {
  // Two parameters; b has no gradient in the second step, so after three steps a has taken 3 and b 2, and
  // each matches the same parameter trained alone for that many steps.
  Tensor a = ones({3}).set_requires_grad(true), b = full({2}, 2.0).set_requires_grad(true);
  Tensor a1 = ones({3}).set_requires_grad(true), b1 = full({2}, 2.0).set_requires_grad(true);
  const nn::AdamOptions o{.lr = 0.1};
  nn::Adam both({{"a", &a}, {"b", &b}}, o), only_a({{"a", &a1}}, o), only_b({{"b", &b1}}, o);
  for (int s = 0; s < 3; ++s) {
    both.zero_grad(), only_a.zero_grad(), only_b.zero_grad();
    backward(sum(mul(a, a)));
    backward(sum(mul(a1, a1)));
    if (s != 1) {
      backward(sum(mul(b, b)));
      backward(sum(mul(b1, b1)));
    }
    both.step(), only_a.step();
    if (s != 1) only_b.step();
  }
  CHECK(a.to_vector() == a1.to_vector());
  CHECK(b.to_vector() == b1.to_vector());
  // One kernel call updates both parameters (on a GPU, one launch instead of one per parameter).
  backward(sum(mul(a, a)));
  backward(sum(mul(b, b)));
  const uint64_t before = kernels::kernel_calls();
  both.step();
  CHECK(kernels::kernel_calls() - before == 1);
}

TEST_CASE("adam: a bad gradient is refused before any parameter or state changes") {
  Tensor a = ones({3}).set_requires_grad(true), b = ones({2}).set_requires_grad(true);
  nn::Adam opt({{"a", &a}, {"b", &b}}, {.lr = 0.1});
  a.set_grad(full({3}, 0.5));
  b.set_grad(zeros({4}));  // the wrong shape, after a good one
  CHECK_THROWS_WITH_AS(opt.step(), doctest::Contains("gradient of 'b'"), Error);
  CHECK(a.to_vector() == std::vector<double>{1, 1, 1});
  CHECK(opt.state_dict().empty());  // no step was counted, no moment created
  b.set_grad(full({2}, 0.5));
  opt.step();  // then a good step is a first step for both
  CHECK(a.to_vector()[0] < 1.0);
  for (const auto& [name, t] : opt.state_dict())
    if (name.find("step.") != std::string::npos) CHECK(t.to_vector() == std::vector<double>{1});
}
