// tests/autograd/test_gradcheck_nn_ops.cpp: finite-difference checks of the neural-network ops (softmax,
// layer norm, index_select, concat / split / chunk, patchify, token pooling), and their argument errors.
#include <doctest/doctest.h>

#include "autograd/ops.h"
#include "tests/testing/gradcheck.h"

using namespace sanf;
using namespace sanf::testing;
using V = std::vector<Tensor>;

namespace {
Tensor indices(const std::vector<double>& v) { return Tensor::from_vector(v, {int64_t(v.size())}, DType::I64); }

// Pieces scaled by 1, 2, 3, ... and joined again: every piece reaches the output with its own weight, so a
// gradient routed to the wrong piece (or dropped) shows.
Tensor rejoin(const std::vector<Tensor>& pieces, int dim) {
  std::vector<Tensor> scaled;
  for (size_t i = 0; i < pieces.size(); ++i) scaled.push_back(mul(pieces[i], double(i + 1)));
  return concat(scaled, dim);
}
}  // namespace

TEST_CASE("gradcheck: softmax") {
  gradcheck("softmax last dim", [](const V& v) { return softmax(v[0], -1); }, {rnd({3, 5}, 101)});
  gradcheck("softmax middle dim", [](const V& v) { return softmax(v[0], 1); }, {rnd({2, 4, 3}, 102)});
  gradcheck("softmax dim 0", [](const V& v) { return softmax(v[0], 0); }, {rnd({3, 2, 2}, 103)});
  gradcheck("softmax of a transposed view", [](const V& v) { return softmax(transpose(v[0], 0, 2), -1); },
            {rnd({4, 2, 3}, 104)});
  gradcheck("softmax of large logits", [](const V& v) { return softmax(v[0], -1); }, {rnd({2, 4}, 105, 3.0, 500.0)});
}

TEST_CASE("gradcheck: log_softmax") {
  gradcheck("log_softmax last dim", [](const V& v) { return log_softmax(v[0], -1); }, {rnd({3, 5}, 111)});
  gradcheck("log_softmax middle dim", [](const V& v) { return log_softmax(v[0], 1); }, {rnd({2, 4, 3}, 112)});
  gradcheck("log_softmax of a transposed view", [](const V& v) { return log_softmax(transpose(v[0], 0, 1), 1); },
            {rnd({5, 3}, 113)});
}

TEST_CASE("gradcheck: layer_norm") {
  auto ln = [](const V& v) { return layer_norm(v[0], v[1], v[2], 1e-5); };
  gradcheck("layer_norm 2-D", ln, {rnd({4, 6}, 121), rnd({6}, 122, 0.5, 1.0), rnd({6}, 123)});
  gradcheck("layer_norm 3-D", ln, {rnd({2, 3, 5}, 124, 2.0, 1.0), rnd({5}, 125, 0.5, 1.0), rnd({5}, 126)});
  gradcheck("layer_norm of a transposed view",
            [](const V& v) { return layer_norm(transpose(v[0], 0, 1), v[1], v[2], 1e-5); },
            {rnd({5, 3}, 127), rnd({5}, 128, 0.5, 1.0), rnd({5}, 129)});
  gradcheck("layer_norm with a strided weight",
            [](const V& v) { return layer_norm(v[0], narrow(v[1], 0, 1, 4), v[2], 0.1); },
            {rnd({3, 4}, 130), rnd({6}, 131, 0.5, 1.0), rnd({4}, 132)});
}

TEST_CASE("gradcheck: index_select") {
  Tensor rows = indices({4, 0, 4, 2, 4});  // 4 three times: its gradient is the sum of three
  gradcheck("index_select dim 0, repeated", [rows](const V& v) { return index_select(v[0], 0, rows); },
            {rnd({5, 3}, 141)});
  Tensor cols = indices({3, 3, 1});
  gradcheck("index_select last dim, repeated", [cols](const V& v) { return index_select(v[0], -1, cols); },
            {rnd({2, 3, 4}, 142)});
  gradcheck("index_select last dim, unchecked (a trusted index)",
            [cols](const V& v) { return index_select(v[0], -1, cols, false); }, {rnd({2, 3, 4}, 144)});
  gradcheck("index_select middle dim of a transposed view",
            [cols](const V& v) {
              return index_select(transpose(v[0], 0, 2), 1, indices({0, 2, 2}));
            },
            {rnd({4, 3, 2}, 143)});
}

TEST_CASE("gradcheck: concat") {
  gradcheck("concat dim 0",
            [](const V& v) {
              return concat({v[0], v[1], v[2]}, 0);
            },
            {rnd({2, 3}, 151), rnd({4, 3}, 152), rnd({1, 3}, 153)});
  gradcheck("concat dim 1, one input transposed",
            [](const V& v) {
              return concat({v[0], transpose(v[1], 0, 1), v[2]}, 1);
            },
            {rnd({2, 3}, 154), rnd({4, 2}, 155), rnd({2, 1}, 156)});
  gradcheck("concat dim -1 of 3-D, the same tensor twice",
            [](const V& v) {
              return concat({v[0], v[1], v[0]}, -1);
            },
            {rnd({2, 2, 3}, 157), rnd({2, 2, 1}, 158)});
}

TEST_CASE("gradcheck: split") {
  gradcheck("split dim 1", [](const V& v) { return rejoin(split(v[0], {1, 3, 2}, 1), 1); }, {rnd({2, 6}, 161)});
  gradcheck("split dim 0 rejoined on dim 1",
            [](const V& v) {
              return rejoin(split(v[0], {2, 2}, 0), 1);
            },
            {rnd({4, 3}, 162)});
  gradcheck("split of a transposed view",
            [](const V& v) {
              return rejoin(split(transpose(v[0], 0, 1), {3, 1}, 0), 0);
            },
            {rnd({3, 4}, 163)});
}

TEST_CASE("gradcheck: chunk") {
  gradcheck("chunk 3 of 5 rows (2, 2, 1)", [](const V& v) { return rejoin(chunk(v[0], 3, 0), 0); }, {rnd({5, 3}, 171)});
  gradcheck("chunk 2 of the last dim", [](const V& v) { return rejoin(chunk(v[0], 2, -1), -1); },
            {rnd({2, 3, 4}, 172)});
}

TEST_CASE("gradcheck: patchify") {
  gradcheck("patchify p=2", [](const V& v) { return patchify(v[0], 2); }, {rnd({2, 3, 4, 6}, 181)});
  gradcheck("patchify p=3 of a permuted view",
            [](const V& v) {
              return patchify(permute(v[0], {0, 3, 1, 2}), 3);
            },
            {rnd({1, 3, 6, 2}, 182)});
  // A ViT patch embedding: the conv weight (D, C, p, p) flattened, gradients w.r.t. images, weight and bias.
  gradcheck("patchify + linear",
            [](const V& v) {
              return linear(patchify(v[0], 2), reshape(v[1], {4, 8}), v[2]);
            },
            {rnd({2, 2, 4, 2}, 183), rnd({4, 2, 2, 2}, 184), rnd({4}, 185)});
}

TEST_CASE("gradcheck: adaptive_avg_pool_tokens") {
  gradcheck("pool 4x4 -> 2x2", [](const V& v) { return adaptive_avg_pool_tokens(v[0], 4, 4, 2, 2); },
            {rnd({2, 16, 3}, 191)});
  gradcheck("pool 5x5 -> 3x3 (overlapping cells)",
            [](const V& v) { return adaptive_avg_pool_tokens(v[0], 5, 5, 3, 3); }, {rnd({1, 25, 2}, 192)});
  gradcheck("pool 6x4 -> 3x2", [](const V& v) { return adaptive_avg_pool_tokens(v[0], 6, 4, 3, 2); },
            {rnd({2, 24, 2}, 193)});
  gradcheck("pool of a transposed view",
            [](const V& v) { return adaptive_avg_pool_tokens(transpose(v[0], 1, 2), 3, 3, 2, 2); },
            {rnd({1, 2, 9}, 194)});
}

TEST_CASE("index_select: gradients of repeated indices add up") {
  Tensor x = zeros({3, 2}, DType::F64).set_requires_grad(true);
  backward(sum(index_select(x, 0, indices({1, 1, 2, 1}))));
  CHECK(x.grad().to_vector() == std::vector<double>{0, 0, 3, 3, 1, 1});
}

TEST_CASE("nn ops: errors name the op and the shapes") {
  Tensor x = zeros({2, 4});
  CHECK_THROWS_WITH_AS(softmax(x, 2), doctest::Contains("[softmax] dim 2 out of range"), Error);
  CHECK_THROWS_WITH_AS(log_softmax(to(x, DType::BF16), 1), doctest::Contains("[log_softmax] needs f32 or f64"), Error);

  CHECK_THROWS_WITH_AS(layer_norm(x, zeros({5}), zeros({4}), 1e-5),
                       doctest::Contains("[layer_norm] weight must be (4,) for x (2, 4), got (5,)"), Error);
  CHECK_THROWS_WITH_AS(layer_norm(x, zeros({4}), zeros({1, 4}), 1e-5),
                       doctest::Contains("[layer_norm] bias must be (4,) for x (2, 4), got (1, 4)"), Error);
  CHECK_THROWS_WITH_AS(layer_norm(x, zeros({4}, DType::F64), zeros({4}), 1e-5),
                       doctest::Contains("[layer_norm] dtypes differ"), Error);

  CHECK_THROWS_WITH_AS(
      index_select(x, 1, indices({0, 4})),
      doctest::Contains("[index_select] index 4 (entry 1) out of range for dim 1 of size 4 in x (2, 4)"), Error);
  CHECK_THROWS_WITH_AS(index_select(x, 0, indices({-1})), doctest::Contains("[index_select] index -1"), Error);
  CHECK_THROWS_WITH_AS(index_select(x, 0, zeros({2})), doctest::Contains("[index_select] index must be a 1-D i64"),
                       Error);

  CHECK_THROWS_WITH_AS(concat({x, zeros({3, 4}), zeros({2, 3})}, 0),
                       doctest::Contains("[concat] input 2 has shape (2, 3) but input 0 has (2, 4): shapes must "
                                         "match except on dim 0"),
                       Error);
  CHECK_THROWS_WITH_AS(concat({x, zeros({2, 4, 1})}, 1),
                       doctest::Contains("[concat] input 1 has shape (2, 4, 1) but input 0 has (2, 4)"), Error);
  CHECK_THROWS_WITH_AS(concat({x, zeros({2, 4}, DType::F64)}, 1),
                       doctest::Contains("[concat] input 1 is f64 cpu (2, 4) but input 0 is f32 cpu (2, 4)"), Error);
  CHECK_THROWS_WITH_AS(concat({}, 0), doctest::Contains("[concat] needs at least one tensor"), Error);

  CHECK_THROWS_WITH_AS(split(x, {1, 2}, 1),
                       doctest::Contains("[split] sizes (1, 2) sum to 3 but dim 1 of (2, 4) has size 4"), Error);
  CHECK_THROWS_WITH_AS(split(x, {5, -1}, 1), doctest::Contains("[split] negative size -1"), Error);
  CHECK_THROWS_WITH_AS(chunk(x, 0, 1), doctest::Contains("[chunk] chunks must be positive, got 0"), Error);

  CHECK_THROWS_WITH_AS(patchify(zeros({1, 3, 5, 6}), 2),
                       doctest::Contains("[patchify] image size 5 x 6 is not divisible by the patch size 2"), Error);
  CHECK_THROWS_WITH_AS(patchify(zeros({3, 4, 4}), 2),
                       doctest::Contains("[patchify] images must be (B, C, H, W), got (3, 4, 4)"), Error);

  CHECK_THROWS_WITH_AS(adaptive_avg_pool_tokens(zeros({2, 15, 3}), 4, 4, 2, 2),
                       doctest::Contains("[adaptive_avg_pool_tokens] 15 tokens in (2, 15, 3) do not form a 4 x 4 grid"),
                       Error);
  CHECK_THROWS_WITH_AS(adaptive_avg_pool_tokens(zeros({2, 16}), 4, 4, 2, 2),
                       doctest::Contains("[adaptive_avg_pool_tokens] tokens must be (B, N, D), got (2, 16)"), Error);
}
