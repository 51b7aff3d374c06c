// examples/05_attention_block.cpp: scaled dot-product attention written out from ops, next to the library's
// nn::Attention, then one transformer block of the ViT.
//
// Multi-head self-attention over tokens x (B, N, D), H heads of width hd = D / H:
//   q, k, v = split(x Wqkv^T + bqkv)        each (B, H, N, hd)
//   A       = softmax(q k^T / sqrt(hd))      (B, H, N, N): row i says how much token i reads from each token
//   o       = A v                            (B, H, N, hd), heads put side by side again -> (B, N, D)
//   out     = o Wproj^T + bproj
// What to notice:
//   * Only matmul, softmax and views (reshape, permute, transpose) are needed; the views copy nothing.
//   * Every row of A sums to 1: each output token is a weighted average of the value vectors.
//   * Nothing in attention knows token order: permuting the input tokens permutes the output the same way.
//     (A ViT adds position embeddings to its tokens for exactly that reason.)
//   * A pre-norm block is two residual branches: x + attn(norm1(x)), then + mlp(norm2(.)).
#include <cmath>
#include <cstdio>

#include "examples/check.h"
#include "vit/block.h"

using namespace sanf;
using example::check;

namespace {
double max_abs_diff(const Tensor& a, const Tensor& b) {
  const std::vector<double> u = a.to_vector(), v = b.to_vector();
  double m = u.size() == v.size() ? 0 : INFINITY;
  for (size_t i = 0; i < u.size() && i < v.size(); ++i) m = std::max(m, std::abs(u[i] - v[i]));
  return m;
}

// The attention above, op by op, with the weights of an nn::Attention. Returns out; A through `weights`.
Tensor attention_by_hand(const nn::Attention& attn, const Tensor& x, Tensor* weights) {
  const int64_t B = x.size(0), N = x.size(1), D = x.size(2), H = attn.heads, hd = D / H;
  Tensor qkv = linear(x, attn.qkv.weight, attn.qkv.bias);          // (B, N, 3D)
  qkv = permute(reshape(qkv, {B, N, 3, H, hd}), {2, 0, 3, 1, 4});  // (3, B, H, N, hd): a view
  Tensor q = select(qkv, 0, 0), k = select(qkv, 0, 1), v = select(qkv, 0, 2);
  Tensor scores = mul(matmul(q, transpose(k, -2, -1)), 1.0 / std::sqrt(double(hd)));  // (B, H, N, N)
  Tensor A = softmax(scores, -1);
  *weights = A;
  Tensor o = reshape(permute(matmul(A, v), {0, 2, 1, 3}), {B, N, D});  // heads side by side
  return linear(o, attn.proj.weight, attn.proj.bias);
}
}  // namespace

int main() {
  const int64_t B = 2, N = 5, D = 16, H = 4;
  Generator gen(5);
  // f64 throughout: the two computations should agree to rounding, ~1e-15.
  nn::InitOptions init{&gen, DType::F64};
  nn::Attention attn(D, H, true, init);
  Tensor x = randn({B, N, D}, DType::F64, Device::CPU, &gen);

  Tensor A;
  const Tensor mine = attention_by_hand(attn, x, &A);
  const Tensor lib = attn.forward(x);
  std::printf("tokens (%lld, %lld, %lld), %lld heads of %lld; attention weights %s\n", (long long)B, (long long)N,
              (long long)D, (long long)H, (long long)(D / H), shape_str(A.shape()).c_str());
  check(max_abs_diff(mine, lib) < 1e-12, "written out == nn::Attention (max difference %.1e)", max_abs_diff(mine, lib));
  check(max_abs_diff(sum(A, {-1}), ones({B, H, N}, DType::F64)) < 1e-12, "every row of A sums to 1");
  const std::vector<double> a0 = A.to_vector();
  std::printf(
      "token 0, head 0 reads from tokens 0..4 with weights %.3f %.3f %.3f %.3f %.3f (fresh weights: near 1/N)\n", a0[0],
      a0[1], a0[2], a0[3], a0[4]);

  // Permutation equivariance: reverse the tokens, and the output comes out reversed.
  const Tensor rev = Tensor::from_vector({4, 3, 2, 1, 0}, {N}, DType::I64);
  const double e = max_abs_diff(attn.forward(index_select(x, 1, rev)), index_select(lib, 1, rev));
  check(e < 1e-12, "attention(reversed tokens) == reversed attention(tokens) (difference %.1e)", e);

  // One ViT block (vit/block.h): LayerNorm, attention, residual; LayerNorm, MLP (D -> 4D -> D, GELU), residual.
  vit::Block block(D, H, 4 * D, true, 1e-6, init);
  const Tensor y = block.forward(x);
  const Tensor h = add(x, block.attn.forward(block.norm1.forward(x)));
  const Tensor y_hand = add(h, block.mlp.forward(block.norm2.forward(h)));
  std::printf("block: (%lld, %lld, %lld) -> %s, %lld parameters\n", (long long)B, (long long)N, (long long)D,
              shape_str(y.shape()).c_str(), (long long)block.parameter_count());
  check(y.shape() == x.shape(), "a block keeps the token shape, so blocks stack");
  check(max_abs_diff(y, y_hand) < 1e-12, "block(x) == x + attn(norm1(x)), then + mlp(norm2(.))");
  // The residual stream: with fresh, small (std 0.02) weights each branch adds little to x.
  check(max_abs_diff(y, x) < 0.5, "fresh branches change x only a little (max change %.3f)", max_abs_diff(y, x));
  return example::finish("05_attention_block");
}
