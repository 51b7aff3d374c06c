// tests/autograd/test_engine.cpp: the reverse sweep: diamonds, reuse, accumulation, no-grad, detach, errors.
#include <doctest/doctest.h>

#include <cmath>

#include "autograd/ops.h"
#include "tests/testing/gradcheck.h"

using namespace sanf;

TEST_CASE("engine: diamond graph sums both paths") {
  // y = x*x + exp(x): both branches use x; dy/dx = 2x + exp(x).
  Tensor x = Tensor::from_vector({0.5, -1.0}, {2}, DType::F64).set_requires_grad(true);
  Tensor a = mul(x, x), b = exp(x);
  Tensor y = sum(add(a, b));
  backward(y);
  std::vector<double> g = x.grad().to_vector();
  CHECK(g[0] == doctest::Approx(2 * 0.5 + std::exp(0.5)));
  CHECK(g[1] == doctest::Approx(-2.0 + std::exp(-1.0)));
}

TEST_CASE("engine: a tensor reused by one node and by a deep chain") {
  // z = h * x where h = tanh(tanh(x)): x reaches the mul node directly and through the chain.
  Tensor x = Tensor::from_vector({0.3}, {1}, DType::F64).set_requires_grad(true);
  Tensor h = tanh(tanh(x));
  Tensor z = sum(mul(h, x));
  backward(z);
  double t1 = std::tanh(0.3), t2 = std::tanh(t1);
  double dh = (1 - t2 * t2) * (1 - t1 * t1);
  CHECK(x.grad().item() == doctest::Approx(t2 + 0.3 * dh));
}

TEST_CASE("engine: gradients accumulate across two backward calls, until zero_grad") {
  Tensor x = Tensor::from_vector({1.0, 2.0}, {2}, DType::F64).set_requires_grad(true);
  Tensor y = sum(mul(x, 3.0));
  backward(y);
  backward(y);  // the graph is kept, so a second sweep is allowed
  CHECK(x.grad().to_vector() == std::vector<double>{6, 6});
  backward(sum(mul(x, x)));
  CHECK(x.grad().to_vector() == std::vector<double>{8, 10});
  x.zero_grad();
  CHECK(!x.grad().defined());
}

TEST_CASE("engine: no-grad guard and detach record nothing") {
  Tensor x = ones({3}, DType::F64).set_requires_grad(true);
  {
    NoGradGuard guard;
    Tensor y = exp(x);
    CHECK(!y.requires_grad());
    CHECK(y.grad_fn() == nullptr);
  }
  CHECK(grad_enabled());
  Tensor d = detach(exp(x));
  CHECK(!d.requires_grad());
  CHECK(d.storage() != nullptr);
  // A graph through a detached branch only reaches x through the live branch.
  Tensor y = sum(add(mul(detach(x), x), x));  // d/dx = detach(x) + 1 = 2
  backward(y);
  CHECK(x.grad().to_vector() == std::vector<double>{2, 2, 2});
}

TEST_CASE("engine: intermediate gradients are freed, leaf gradients kept") {
  Tensor x = ones({2}, DType::F64).set_requires_grad(true);
  Tensor h = exp(x);
  backward(sum(h));
  CHECK(x.grad().defined());
  CHECK(!h.grad().defined());
}

TEST_CASE("engine: errors name the problem") {
  Tensor x = ones({2});
  CHECK_THROWS_WITH_AS(backward(sum(x)), doctest::Contains("does not require grad"), Error);
  Tensor w = ones({2}).set_requires_grad(true);
  CHECK_THROWS_WITH_AS(backward(mul(w, 2.0)), doctest::Contains("non-scalar output (2,)"), Error);
  CHECK_THROWS_WITH_AS(exp(w).set_requires_grad(true), doctest::Contains("non-leaf"), Error);
}

TEST_CASE("ops: shape, dtype and device mismatches throw with the op's name and the shapes") {
  Tensor a = ones({2, 3}), b = ones({4, 3}), c = ones({2, 3}, DType::F64);
  CHECK_THROWS_WITH_AS(add(a, b), doctest::Contains("[add] shapes do not broadcast: (2, 3) and (4, 3)"), Error);
  CHECK_THROWS_WITH_AS(mul(a, c), doctest::Contains("[mul] dtypes differ: f32 cpu (2, 3) and f64 cpu (2, 3)"), Error);
  CHECK_THROWS_WITH_AS(exp(to(a, DType::BF16)), doctest::Contains("[exp] needs f32 or f64, got bf16"), Error);
  CHECK_THROWS_WITH_AS(sum(a, {2}), doctest::Contains("[sum] dim 2 out of range"), Error);
  if (!cuda_available()) {
    CHECK_THROWS_WITH_AS(to(a, Device::CUDA), doctest::Contains("no CUDA support"), Error);
  }
}
