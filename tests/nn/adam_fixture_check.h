// tests/nn/adam_fixture_check.h: Adam against torch.optim.Adam (fixture from
// tests/fixtures/make_adam_fixture.py: two parameters, 5 steps, two option sets) on one device
// (tests/nn/test_adam.cpp: the CPU; tests/cuda/test_cuda_fixtures.cpp: CUDA, the fused Adam kernel).
#pragma once

#include <doctest/doctest.h>

#include <string>

#include "core/safetensors.h"
#include "nn/adam.h"
#include "tests/testing/gradcheck.h"

namespace sanf::testing {

inline void check_adam_fixture(Device device) {
  INFO("device ", device_name(device));
  SafetensorsFile f = SafetensorsFile::open(std::string(SANF_FIXTURES_DIR) + "/adam.safetensors");
  auto owned = [&](const std::string& name) { return clone(to(f.get(name), device)); };
  for (std::string prefix : {"spec.", "big."}) {
    CAPTURE(prefix);
    nn::AdamOptions o;
    o.lr = std::stod(f.metadata().at(prefix + "lr"));
    o.beta1 = std::stod(f.metadata().at(prefix + "beta1"));
    o.beta2 = std::stod(f.metadata().at(prefix + "beta2"));
    o.eps = std::stod(f.metadata().at(prefix + "eps"));
    o.weight_decay = std::stod(f.metadata().at(prefix + "weight_decay"));
    Tensor w = owned(prefix + "w.init").set_requires_grad(true);
    Tensor b = owned(prefix + "b.init").set_requires_grad(true);
    nn::Adam opt({{"w", &w}, {"b", &b}}, o);
    for (int step = 0; step < 5; ++step) {
      w.set_grad(owned(prefix + "w.grad" + std::to_string(step)));
      b.set_grad(owned(prefix + "b.grad" + std::to_string(step)));
      opt.step();
      CHECK(w.device() == device);
      SANF_CHECK_CLOSE(to(w, Device::CPU), f.get(prefix + "w.after" + std::to_string(step)), 1e-6, 1e-7);
      SANF_CHECK_CLOSE(to(b, Device::CPU), f.get(prefix + "b.after" + std::to_string(step)), 1e-6, 1e-7);
    }
    // The parameters really moved (the comparison above is not against the initial values).
    CHECK(closeness(to(w, Device::CPU), f.get(prefix + "w.init"), 1e-6, 1e-9) > 1.0);
    auto state = opt.state_dict();
    for (auto& [name, t] : state)
      if (name == "adam.exp_avg_sq.w") SANF_CHECK_CLOSE(to(t, Device::CPU), f.get(prefix + "w.exp_avg_sq"), 1e-5, 1e-12);
  }
}

}  // namespace sanf::testing
