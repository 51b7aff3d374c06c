// tests/nn/test_module.cpp: parameter naming, strict state dicts, initialisation, module gradient checks.
#include <doctest/doctest.h>

#include <cmath>

#include "nn/layers.h"
#include "tests/testing/gradcheck.h"

using namespace sanf;
using namespace sanf::testing;

namespace {
// A two-level module: names must compose as "inner.weight".
struct Block : nn::Module {
  nn::Linear inner;
  nn::LayerNorm norm;
  Tensor scale;
  Tensor perm;  // a buffer
  explicit Block(Generator* g) : inner(3, 4, true, {g}), norm(4, 1e-6, {g}) {
    register_module("inner", inner);
    register_module("norm", norm);
    scale = ones({4});
    register_parameter("scale", scale);
    perm = arange(4);
    register_buffer("perm", perm);
  }
};
std::map<std::string, Tensor> as_map(const std::vector<std::pair<std::string, Tensor>>& v) {
  return {v.begin(), v.end()};
}
}  // namespace

TEST_CASE("module: names compose, buffers are saved but not trained") {
  Generator g(1);
  Block b(&g);
  std::vector<std::string> names;
  for (auto& [n, t] : b.named_parameters()) names.push_back(n);
  CHECK(names == std::vector<std::string>{"scale", "inner.weight", "inner.bias", "norm.weight", "norm.bias"});
  CHECK(b.parameter_count() == 4 + 12 + 4 + 4 + 4);
  auto sd = as_map(b.state_dict());
  CHECK(sd.count("perm") == 1);
  CHECK(b.parameters().size() == 5);
}

TEST_CASE("module: load_state_dict is strict and names the source and tensor") {
  Generator g1(1), g2(2);
  Block a(&g1), b(&g2);
  auto sd = as_map(a.state_dict());
  b.load_state_dict(sd, "a.safetensors");
  CHECK(b.inner.weight.to_vector() == a.inner.weight.to_vector());
  CHECK(b.inner.weight.requires_grad());

  auto missing = sd;
  missing.erase("norm.bias");
  CHECK_THROWS_WITH_AS(b.load_state_dict(missing, "m.safetensors"),
                       doctest::Contains("m.safetensors: 1 tensor(s) missing: norm.bias"), Error);
  auto extra = sd;
  extra["head.weight"] = zeros({2});
  CHECK_THROWS_WITH_AS(b.load_state_dict(extra, "x.safetensors"),
                       doctest::Contains("x.safetensors: 1 unexpected tensor(s): head.weight"), Error);
  auto shape = sd;
  shape["inner.weight"] = zeros({4, 4});
  Tensor before = clone(b.inner.bias);
  CHECK_THROWS_WITH_AS(b.load_state_dict(shape, "s.safetensors"),
                       doctest::Contains("s.safetensors: tensor 'inner.weight' has shape (4, 4), the model expects (4, 3)"),
                       Error);
  CHECK(b.inner.bias.to_vector() == before.to_vector());  // a failed load changes nothing
  // A bf16 checkpoint loads into an f32 model (converted).
  auto half = sd;
  for (auto& [n, t] : half)
    if (is_floating(t.dtype())) t = to(t, DType::BF16);
  b.load_state_dict(half, "h.safetensors");
  CHECK(b.inner.weight.dtype() == DType::F32);
}

TEST_CASE("init: Linear follows timm (trunc normal std 0.02, zero bias), seeded") {
  Generator g(7), h(7);
  nn::Linear l(256, 128, true, {&g}), m(256, 128, true, {&h});
  CHECK(l.weight.to_vector() == m.weight.to_vector());
  std::vector<double> w = l.weight.to_vector();
  double s = 0, s2 = 0;
  for (double x : w) s += x, s2 += x * x;
  double mu = s / double(w.size()), sd = std::sqrt(s2 / double(w.size()) - mu * mu);
  CHECK(std::fabs(mu) < 0.001);
  CHECK(sd == doctest::Approx(0.02).epsilon(0.02));
  CHECK(l.bias.to_vector() == std::vector<double>(128, 0.0));
  nn::LayerNorm n(8);
  CHECK(n.weight.to_vector() == std::vector<double>(8, 1.0));
}

TEST_CASE("gradcheck: nn.Linear and nn.LayerNorm modules") {
  Generator g(9);
  nn::Linear lin(3, 4, true, {&g, DType::F64});
  nn::LayerNorm ln(4, 1e-6, {&g, DType::F64});
  // Check w.r.t. the input and, by passing the parameters as inputs, w.r.t. the weights.
  gradcheck("Linear", [&](const std::vector<Tensor>& v) { return linear(v[0], v[1], v[2]); },
            {rnd({2, 5, 3}, 1), detach(lin.weight), detach(lin.bias)});
  gradcheck("Linear module forward", [&](const std::vector<Tensor>& v) { return lin.forward(v[0]); }, {rnd({2, 3}, 2)});
  gradcheck("LayerNorm module forward", [&](const std::vector<Tensor>& v) { return ln.forward(v[0]); },
            {rnd({2, 4}, 3)});
}

TEST_CASE("module: to(dtype) converts floating parameters and buffers, keeps them trainable leaves") {
  Generator g(4);
  Block b(&g);
  std::vector<double> w = b.inner.weight.to_vector();
  b.to(DType::F64);
  CHECK(b.inner.weight.dtype() == DType::F64);
  CHECK(b.inner.weight.requires_grad());
  CHECK(b.inner.weight.is_leaf());
  CHECK(b.inner.weight.to_vector() == w);  // f32 -> f64 is exact
  CHECK(b.perm.dtype() == DType::I64);     // integer buffers keep their dtype
  CHECK(b.named_parameters()[1].second == &b.inner.weight);  // registration still points at the members
  backward(sum(b.inner.forward(ones({2, 3}, DType::F64))));
  CHECK(b.inner.weight.grad().dtype() == DType::F64);
  b.to(DType::F32);
  CHECK(b.scale.dtype() == DType::F32);
  CHECK(b.inner.weight.to_vector() == w);
}
