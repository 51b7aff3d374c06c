// tests/testing/gradcheck.h: finite-difference gradient checks in f64, for every differentiable op.
//
// gradcheck(f, inputs) compares the gradient that backward() computes for L = sum(f(inputs) * W), W a fixed
// random tensor (so every output element counts, with a different weight), against central differences
//   dL/dx_i ~ (L(x + eps e_i) - L(x - eps e_i)) / (2 eps)
// for every element of every floating input. Inputs must be f64 (integer inputs, e.g. indices, are passed
// through unchecked); they may live on any device, and f may build any views (transpose, expand, narrow)
// of them, which is how non-contiguous and broadcast cases are covered.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "autograd/ops.h"

namespace sanf::testing {

struct GradcheckOptions {
  double eps = 1e-6;
  double rtol = 1e-5;
  double atol = 1e-8;
  uint64_t seed = 1234;
  // Fail if every analytic gradient is exactly zero: a check of an input that does not matter checks nothing.
  bool expect_nonzero = true;
};

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

// Returns true when all gradients agree; reports the worst element through doctest on failure.
bool gradcheck(const std::string& name, const Fn& f, const std::vector<Tensor>& inputs,
               const GradcheckOptions& opt = {});

// Random f64 input, standard normal scaled by `scale` plus `shift`, from a seeded generator.
Tensor rnd(const Shape& shape, uint64_t seed, double scale = 1.0, double shift = 0.0, Device dev = Device::CPU);

// max |a - b| / (atol + rtol * |b|) over elements; <= 1 means close. Shapes must match.
double closeness(const Tensor& a, const Tensor& b, double rtol, double atol);

// The relative L2 error ||a - b|| / ||b|| (in double; a and b of any device and float dtype).
double rel_l2(const Tensor& a, const Tensor& b);
#define SANF_CHECK_CLOSE(a, b, rtol, atol) CHECK(::sanf::testing::closeness((a), (b), (rtol), (atol)) <= 1.0)

}  // namespace sanf::testing
