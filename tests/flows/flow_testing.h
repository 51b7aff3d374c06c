// tests/flows/flow_testing.h: helpers shared by the flow tests.
//
// A fresh flow is the identity up to its permutations (Wf = 0), which would make most checks trivial, so
// tests first give every parameter random non-zero values. Gradient checks treat parameters as inputs by
// pointing the module's parameter handles at the tensors gradcheck passes in (with_params).
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "flows/flow.h"
#include "tests/testing/gradcheck.h"

namespace sanf::flows::testing_helpers {

// Every parameter of m <- N(0, scale^2), drawn from `seed`; biases |N(0, scale^2)|, so that the narrow ReLU
// MLPs of test-sized CAFFs do not die (a ReLU layer with every unit negative passes no gradient).
inline void randomize(nn::Module& m, uint64_t seed, double scale = 0.3) {
  Generator gen(seed);
  for (auto& [name, p] : m.named_parameters()) {
    const bool is_bias = name.size() >= 4 && name.compare(name.size() - 4, 4, "bias") == 0;
    Tensor r = randn(p->shape(), p->dtype(), p->device(), &gen) * scale;
    r = detach(is_bias ? pow(square(r), 0.5) : r);
    r.set_requires_grad(true);
    *p = r;
  }
}

// The module's parameter handles, in named_parameters() order, and their current values (as f64 inputs).
inline std::vector<Tensor*> param_ptrs(nn::Module& m) {
  std::vector<Tensor*> out;
  for (auto& [name, p] : m.named_parameters()) out.push_back(p);
  return out;
}
inline std::vector<Tensor> param_values(nn::Module& m) {
  std::vector<Tensor> out;
  for (auto& [name, p] : m.named_parameters()) out.push_back(detach(*p));
  return out;
}

// Make the module use xs[first], xs[first+1], ... as its parameters (the tensors gradcheck perturbs).
inline void with_params(const std::vector<Tensor*>& ptrs, const std::vector<Tensor>& xs, size_t first) {
  for (size_t i = 0; i < ptrs.size(); ++i) *ptrs[i] = xs[first + i];
}

// A small configuration for gradient checks and invertibility tests.
inline FlowConfig small_config(int64_t D = 8, int64_t N = 3, int64_t K = 2, int64_t H = 6, int64_t heads = 2) {
  FlowConfig c;
  c.dim = D, c.tokens = N, c.layers = K, c.hidden = H, c.heads = heads, c.seed = 7;
  return c;
}

// log|det A| of a row-major n x n matrix, by LU with partial pivoting.
inline double log_abs_det(std::vector<double> A, int n) {
  double acc = 0;
  for (int c = 0; c < n; ++c) {
    int p = c;
    for (int r = c + 1; r < n; ++r)
      if (std::fabs(A[size_t(r * n + c)]) > std::fabs(A[size_t(p * n + c)])) p = r;
    for (int k = 0; k < n; ++k) std::swap(A[size_t(c * n + k)], A[size_t(p * n + k)]);
    const double piv = A[size_t(c * n + c)];
    acc += std::log(std::fabs(piv));
    for (int r = c + 1; r < n; ++r) {
      const double f = A[size_t(r * n + c)] / piv;
      for (int k = c; k < n; ++k) A[size_t(r * n + k)] -= f * A[size_t(c * n + k)];
    }
  }
  return acc;
}

inline std::string tmp_path(const std::string& stem) {
  return "/tmp/sanf_test_flow_" + stem + "_" + std::to_string(::getpid()) + ".safetensors";
}

}  // namespace sanf::flows::testing_helpers
