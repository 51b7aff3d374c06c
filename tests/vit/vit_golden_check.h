// tests/vit/vit_golden_check.h: the ViT against PyTorch (fixture from tests/fixtures/make_vit_fixture.py):
// forward tokens and gradients vs a plain-torch transcription of timm's forward, on one device
// (tests/vit/test_vit_golden.cpp: the CPU; tests/cuda/test_cuda_fixtures.cpp: CUDA).
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "core/safetensors.h"
#include "tests/testing/gradcheck.h"
#include "vit/vit.h"

namespace sanf::testing {

inline std::string fixture(const std::string& name) { return std::string(SANF_FIXTURES_DIR) + "/" + name; }

// max |a - b| / max |b|: the error relative to the tensor's scale (elementwise closeness is checked too).
inline double rel_err(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  std::vector<double> va = a.to_vector(), vb = b.to_vector();
  double diff = 0, scale = 0;
  for (size_t i = 0; i < va.size(); ++i) {
    diff = std::max(diff, std::fabs(va[i] - vb[i]));
    scale = std::max(scale, std::fabs(vb[i]));
  }
  return diff / scale;
}

// Forward tokens and the gradients of sum(tokens * loss_w) in f32 (to 1e-4) and f64 (to 1e-10), the model
// and the images on `device`.
inline void check_vit_golden(Device device) {
  const char* grad_names[] = {"cls_token",  "pos_embed", "patch_embed.proj.weight", "blocks.0.attn.qkv.weight",
                              "blocks.1.mlp.fc1.bias", "norm.weight"};
  SafetensorsFile g = SafetensorsFile::open(fixture("vit_golden.safetensors"));
  for (DType dt : {DType::F32, DType::F64}) {
    const std::string dt_name = dtype_name(dt);
    CAPTURE(dt_name);
    INFO("device ", device_name(device));
    const double tol = dt == DType::F32 ? 1e-4 : 1e-10;
    auto model = vit::VisionTransformer::load(fixture("vit_tiny.safetensors"), 0, dt, device);
    CHECK(model->config().name == "vit-test");
    Tensor images = clone(to(to(g.get("images"), dt), device)).set_requires_grad(true);  // a fresh leaf
    Tensor tokens = model->forward(images);
    CHECK(tokens.device() == device);
    CHECK(tokens.shape() == Shape{2, 17, 32});
    const double fwd = rel_err(tokens, g.get("tokens"));
    MESSAGE(dt_name, " forward on ", device_name(device), ": max |diff| / max |ref| = ", fwd);
    CHECK(fwd < tol);
    SANF_CHECK_CLOSE(to(tokens, Device::CPU), g.get("tokens"), tol, tol);

    backward(sum(mul(tokens, to(to(g.get("loss_w"), dt), device))));
    std::map<std::string, Tensor> grads = {{"images", images.grad()}};
    for (auto& [name, t] : model->named_parameters()) grads[name] = t->grad();
    std::vector<std::string> names = {"images"};
    names.insert(names.end(), std::begin(grad_names), std::end(grad_names));
    for (const std::string& name : names) {
      CAPTURE(name);
      REQUIRE(grads[name].defined());
      const Tensor ref = g.get("grad." + name);
      const double e = rel_err(grads[name], ref);
      MESSAGE(dt_name, " grad ", name, " on ", device_name(device), ": max |diff| / max |ref| = ", e);
      CHECK(e < tol);
    }
  }
}

}  // namespace sanf::testing
