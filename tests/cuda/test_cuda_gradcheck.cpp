// tests/cuda/test_cuda_gradcheck.cpp: finite-difference gradient checks (f64) with the inputs, the ops and
// the backward all on the GPU: the CUDA backward kernels checked against the CUDA forward kernels, not only
// against the CPU.
#include <doctest/doctest.h>

#include "autograd/ops.h"
#include "tests/cuda/parity.h"
#include "tests/testing/gradcheck.h"

using namespace sanf;
using namespace sanf::testing;
using V = std::vector<Tensor>;

namespace {
Tensor on_gpu(const Shape& shape, uint64_t seed, double scale = 1.0, double shift = 0.0) {
  return rnd(shape, seed, scale, shift, Device::CUDA);
}
}  // namespace

TEST_CASE("cuda gradcheck: softmax and log_softmax") {
  SANF_SKIP_WITHOUT_CUDA();
  gradcheck("cuda softmax last dim", [](const V& v) { return softmax(v[0], -1); }, {on_gpu({3, 7}, 300)});
  gradcheck("cuda softmax middle dim", [](const V& v) { return softmax(v[0], 1); }, {on_gpu({2, 5, 3}, 301)});
  gradcheck("cuda log_softmax", [](const V& v) { return log_softmax(v[0], -1); }, {on_gpu({4, 6}, 302)});
}

TEST_CASE("cuda gradcheck: layer_norm") {
  SANF_SKIP_WITHOUT_CUDA();
  gradcheck("cuda layer_norm", [](const V& v) { return layer_norm(v[0], v[1], v[2], 1e-5); },
            {on_gpu({4, 3, 6}, 310), on_gpu({6}, 311, 0.5, 1.0), on_gpu({6}, 312)});
  gradcheck("cuda layer_norm of transposed view",
            [](const V& v) { return layer_norm(transpose(v[0], 0, 1), v[1], v[2], 1e-5); },
            {on_gpu({4, 5}, 313), on_gpu({4}, 314, 0.5, 1.0), on_gpu({4}, 315)});
}

TEST_CASE("cuda gradcheck: matmul and linear") {
  SANF_SKIP_WITHOUT_CUDA();
  gradcheck("cuda matmul 2-D", [](const V& v) { return matmul(v[0], v[1]); },
            {on_gpu({3, 4}, 320), on_gpu({4, 5}, 321)});
  gradcheck("cuda matmul broadcast batch", [](const V& v) { return matmul(v[0], v[1]); },
            {on_gpu({2, 3, 4}, 322), on_gpu({4, 2}, 323)});
  gradcheck("cuda matmul transposed B", [](const V& v) { return matmul(v[0], transpose(v[1], 0, 1)); },
            {on_gpu({3, 4}, 324), on_gpu({5, 4}, 325)});
  gradcheck("cuda linear", [](const V& v) { return linear(v[0], v[1], v[2]); },
            {on_gpu({2, 3, 4}, 326), on_gpu({5, 4}, 327), on_gpu({5}, 328)});
}

TEST_CASE("cuda gradcheck: index_select") {
  SANF_SKIP_WITHOUT_CUDA();
  const Tensor idx = Tensor::from_vector({2, 0, 2, 1}, {4}, DType::I64, Device::CUDA);
  gradcheck("cuda index_select", [](const V& v) { return index_select(v[0], 1, v[1]); }, {on_gpu({3, 4, 2}, 330), idx});
}

TEST_CASE("cuda gradcheck: reductions, pooling and elementwise") {
  SANF_SKIP_WITHOUT_CUDA();
  gradcheck("cuda sum", [](const V& v) { return sum(v[0], {0, 2}); }, {on_gpu({3, 4, 5}, 340)});
  gradcheck("cuda mean", [](const V& v) { return mean(v[0], {1}); }, {on_gpu({3, 4, 5}, 341)});
  gradcheck("cuda max", [](const V& v) { return max(v[0], {1}); }, {on_gpu({3, 6}, 342)});
  gradcheck("cuda adaptive_avg_pool_tokens", [](const V& v) { return adaptive_avg_pool_tokens(v[0], 5, 3, 2, 2); },
            {on_gpu({2, 15, 3}, 343)});
  gradcheck("cuda gelu * broadcast", [](const V& v) { return mul(gelu(v[0]), v[1]); },
            {on_gpu({3, 4}, 344), on_gpu({4}, 345)});
  gradcheck("cuda concat",
            [](const V& v) {
              return concat({v[0], transpose(v[1], 0, 1)}, 0);
            },
            {on_gpu({2, 3}, 346), on_gpu({3, 4}, 347)});
}
