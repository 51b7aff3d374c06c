// tests/flows/flow_fixture_check.h: the flow against an independent plain-PyTorch implementation of docs/METHOD.md §3
// (fixture from tests/fixtures/make_flow_fixture.py) on one device (tests/flows/test_parity.cpp: the CPU;
// tests/cuda/test_cuda_fixtures.cpp: CUDA): z, log-det, NLL, mean(z^2) and the gradients of the mean NLL with
// respect to every parameter and to y and P, in f32, with CAFF, with pooled tokens and without CAFF.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "core/safetensors.h"
#include "flows/flow.h"
#include "tests/testing/gradcheck.h"

namespace sanf::testing {

// max |a - b| / max |b|: the error relative to the reference tensor's scale.
inline double scaled_error(const Tensor& a, const Tensor& b) {
  std::vector<double> va = a.to_vector(), vb = b.to_vector();
  REQUIRE(va.size() == vb.size());
  double diff = 0, scale = 0;
  for (size_t i = 0; i < va.size(); ++i) {
    diff = std::max(diff, std::fabs(va[i] - vb[i]));
    scale = std::max(scale, std::fabs(vb[i]));
  }
  return scale > 0 ? diff / scale : diff;
}

// Element-wise within 1e-4 relative, elements near zero measured against the tensor's scale.
inline void check_close(const std::string& what, const Tensor& ours, const Tensor& ref, double& worst) {
  CAPTURE(what);
  REQUIRE(ours.defined());
  double scale = 0;
  for (double v : ref.to_vector()) scale = std::max(scale, std::fabs(v));
  CHECK(closeness(to(ours, Device::CPU), ref, 1e-4, std::max(1e-4 * scale, 1e-12)) <=
        1.0);  // all-zero refs: q, k without CAFF
  worst = std::max(worst, scaled_error(ours, ref));
}

inline void check_flow_fixture(Device device) {
  using namespace sanf::flows;
  INFO("device ", device_name(device));
  const std::string path = std::string(SANF_FIXTURES_DIR) + "/flow.safetensors";
  SafetensorsFile f = SafetensorsFile::open(path);
  for (std::string prefix : {"caff.", "pooled.", "nocaff."}) {
    CAPTURE(prefix);
    std::map<std::string, std::string> meta;
    for (auto& [k, v] : f.metadata())
      if (k.rfind(prefix, 0) == 0) meta[k.substr(prefix.size())] = v;
    Flow flow(FlowConfig::from_metadata(meta, path + " [" + prefix + "]"), DType::F32, device);
    // The fixture's parameters and permutations, by the module's own names (load is strict and moves them
    // to the module's device).
    std::map<std::string, Tensor> state;
    for (const TensorEntry& e : f.entries()) {
      if (e.name.rfind(prefix + "layers.", 0) == 0) state[e.name.substr(prefix.size())] = f.get(e.name);
    }
    flow.load_state_dict(state, path);
    auto ref = [&](const std::string& name) { return f.get(prefix + name); };

    Tensor y = clone(to(ref("y"), device)).set_requires_grad(true);
    Tensor P = clone(to(ref("P"), device)).set_requires_grad(true);
    Flow::Output out = flow.forward(y, P);
    CHECK(out.z.device() == device);
    double fwd = 0, grads = 0;
    check_close("z", out.z, ref("z"), fwd);
    check_close("logdet", out.logdet, ref("logdet"), fwd);
    check_close("nll", nll(out), ref("nll"), fwd);
    check_close("mean_z2", mean_z2(out.z), ref("mean_z2"), fwd);

    backward(mean(nll(out)));
    check_close("grad y", y.grad(), ref("grad.y"), grads);
    if (f.contains(prefix + "grad.P")) check_close("grad P", P.grad(), ref("grad.P"), grads);
    int checked = 0;
    for (auto& [name, p] : flow.named_parameters()) {
      ++checked;
      if (name.size() > 11 && name.compare(name.size() - 11, 11, "attn.k.bias") == 0) {
        // q.(k_j + bk) shifts every score by the same q.bk, which softmax ignores: dL/dbk is exactly 0, and
        // both sides hold only rounding noise (f64 there, f32 here).
        CAPTURE(name);
        for (double g : p->grad().to_vector()) CHECK(std::fabs(g) < 1e-6);
        continue;
      }
      check_close("grad " + name, p->grad(), ref("grad." + name), grads);
    }
    CHECK(checked == int(flow.named_parameters().size()));
    MESSAGE(prefix, " on ", device_name(device), ": worst error relative to scale: forward ", fwd, ", gradients ",
            grads);
  }
}

}  // namespace sanf::testing
