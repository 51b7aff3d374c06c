// tests/nn/test_adam.cpp: Adam against torch.optim.Adam (fixture from tests/fixtures/make_adam_fixture.py),
// and exact resumption from saved state.
#include <doctest/doctest.h>

#include <string>

#include "core/safetensors.h"
#include "nn/adam.h"
#include "nn/layers.h"
#include "tests/testing/gradcheck.h"

using namespace sanf;

namespace {
Tensor owned(const SafetensorsFile& f, const std::string& name) { return clone(f.get(name)); }
}  // namespace

TEST_CASE("adam: matches torch.optim.Adam over 5 steps (two option sets)") {
  SafetensorsFile f = SafetensorsFile::open(std::string(SANF_FIXTURES_DIR) + "/adam.safetensors");
  for (std::string prefix : {"spec.", "big."}) {
    CAPTURE(prefix);
    nn::AdamOptions o;
    o.lr = std::stod(f.metadata().at(prefix + "lr"));
    o.beta1 = std::stod(f.metadata().at(prefix + "beta1"));
    o.beta2 = std::stod(f.metadata().at(prefix + "beta2"));
    o.eps = std::stod(f.metadata().at(prefix + "eps"));
    o.weight_decay = std::stod(f.metadata().at(prefix + "weight_decay"));
    Tensor w = owned(f, prefix + "w.init").set_requires_grad(true);
    Tensor b = owned(f, prefix + "b.init").set_requires_grad(true);
    nn::Adam opt({{"w", &w}, {"b", &b}}, o);
    for (int step = 0; step < 5; ++step) {
      w.set_grad(owned(f, prefix + "w.grad" + std::to_string(step)));
      b.set_grad(owned(f, prefix + "b.grad" + std::to_string(step)));
      opt.step();
      SANF_CHECK_CLOSE(w, f.get(prefix + "w.after" + std::to_string(step)), 1e-6, 1e-7);
      SANF_CHECK_CLOSE(b, f.get(prefix + "b.after" + std::to_string(step)), 1e-6, 1e-7);
    }
    // The parameters really moved (the comparison above is not against the initial values).
    CHECK(testing::closeness(w, f.get(prefix + "w.init"), 1e-6, 1e-9) > 1.0);
    auto state = opt.state_dict();
    for (auto& [name, t] : state)
      if (name == "adam.exp_avg_sq.w") SANF_CHECK_CLOSE(t, f.get(prefix + "w.exp_avg_sq"), 1e-5, 1e-12);
  }
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
