// flows/caff.cpp: the MLP, class attention and fusion of CAFF (the math is in flows/caff.h).
#include "flows/caff.h"

#include <cmath>

namespace sanf::flows {

namespace {
// std of a weight with the variance of PyTorch's U(-1/sqrt(in), 1/sqrt(in)): (1/sqrt(in))^2 / 3.
double std_for(int64_t in) { return 1.0 / std::sqrt(3.0 * double(in)); }
}  // namespace

ReluMLP::ReluMLP(int64_t in, int64_t hidden, nn::InitOptions init)
    : fc1(in, hidden, true, init, std_for(in)),
      fc2(hidden, hidden, true, init, std_for(hidden)),
      fc3(hidden, hidden, true, init, std_for(hidden)) {
  register_module("fc1", fc1);
  register_module("fc2", fc2);
  register_module("fc3", fc3);
}

Tensor ReluMLP::forward(const Tensor& x) { return relu(fc3.forward(relu(fc2.forward(relu(fc1.forward(x)))))); }

ClassAttention::ClassAttention(int64_t d, int64_t out, int64_t heads_, bool qkv_bias, nn::InitOptions init)
    : q(d, d, qkv_bias, init, std_for(d)),
      k(d, d, qkv_bias, init, std_for(d)),
      v(d, d, qkv_bias, init, std_for(d)),
      proj(d, out, true, init, std_for(d)),
      heads(heads_) {
  SANF_CHECK(heads > 0 && d % heads == 0, "[ClassAttention] heads (", heads, ") must divide the width ", d);
  register_module("q", q);
  register_module("k", k);
  register_module("v", v);
  register_module("proj", proj);
  gamma = ones({out}, init.dtype, init.device);
  register_parameter("gamma", gamma);
}

// With one query per sample, the products by Wk and Wv can be moved off the N+1 tokens of m = [h; Q]:
//   q_h . k_j = q_h . (Wk_h m_j + bk_h) = r_h . m_j + q_h . bk_h        with r_h = Wk_h^T q_h   (d)
//   sum_j A_j v_j = sum_j A_j (Wv_h m_j + bv_h) = Wv_h mbar_h + bv_h     with mbar_h = sum_j A_j m_j (d)
// (the second because each head's A sums to 1). Wk_h, Wv_h (dh, d) are head h's rows of Wk, Wv. This is
// exactly the attention written in flows/caff.h, but it costs O(B (N+1) d heads) instead of two
// (B (N+1), d) x (d, d) products, and no gradient is ever formed for the (untrained) patch tokens' keys.
Tensor ClassAttention::forward(const Tensor& h, const Tensor& Q) {
  const int64_t B = h.size(0), d = h.size(1), dh = d / heads;
  Tensor qh = transpose(reshape(q.forward(h), {B, heads, dh}), 0, 1);         // (heads, B, dh)
  Tensor r = transpose(matmul(qh, reshape(k.weight, {heads, dh, d})), 0, 1);  // (B, heads, d): r_h
  // Scores (B, M, heads): row 0 is h's own key, rows 1..N the patch tokens'.
  Tensor scores = unsqueeze(sum(r * unsqueeze(h, 1), {2}), 1);                   // (B, 1, heads)
  if (Q.defined()) scores = concat({scores, matmul(Q, transpose(r, 1, 2))}, 1);  // (B, N+1, heads)
  if (k.bias.defined()) {  // + q_h . bk_h, the same for every key (softmax ignores it; kept to match the math)
    Tensor qb = sum(qh * reshape(k.bias, {heads, 1, dh}), {2});  // (heads, B)
    scores = scores + unsqueeze(transpose(qb, 0, 1), 1);
  }
  Tensor A = softmax(scores * (1.0 / std::sqrt(double(dh))), 1);  // (B, M, heads), over keys
  if (record) recorded = detach(A);
  // mbar (B, heads, d): the attention-weighted mean of the tokens m_j, per head.
  Tensor At = transpose(A, 1, 2);  // (B, heads, M)
  Tensor mbar = narrow(At, 2, 0, 1) * unsqueeze(h, 1);
  if (Q.defined()) mbar = mbar + matmul(narrow(At, 2, 1, Q.size(1)), Q);
  // av_h = Wv_h mbar_h + bv_h, heads concatenated -> (B, d).
  Tensor av = matmul(transpose(mbar, 0, 1), transpose(reshape(v.weight, {heads, dh, d}), 1, 2));  // (heads, B, dh)
  av = reshape(transpose(av, 0, 1), {B, d});
  if (v.bias.defined()) av = av + v.bias;
  return proj.forward(av) * gamma;  // (B, out)
}

Tensor ClassAttention::forward_direct(const Tensor& h, const Tensor& Q, Tensor* weights) {
  const int64_t B = h.size(0), d = h.size(1), dh = d / heads;
  Tensor m = unsqueeze(h, 1);                       // (B, 1, d)
  if (Q.defined()) m = concat({m, Q}, 1);           // (B, M, d), M = N+1
  const int64_t M = m.size(1);
  Tensor qh = reshape(q.forward(h), {B, heads, 1, dh});                          // (B, heads, 1, dh)
  Tensor K = permute(reshape(k.forward(m), {B, M, heads, dh}), {0, 2, 3, 1});    // (B, heads, dh, M)
  Tensor V = permute(reshape(v.forward(m), {B, M, heads, dh}), {0, 2, 1, 3});    // (B, heads, M, dh)
  Tensor A = softmax(matmul(qh, K) * (1.0 / std::sqrt(double(dh))), 3);         // (B, heads, 1, M)
  if (weights) *weights = permute(reshape(A, {B, heads, M}), {0, 2, 1});         // (B, M, heads)
  Tensor av = reshape(matmul(A, V), {B, d});                                     // heads concatenated
  return proj.forward(av) * gamma;
}

CAFF::CAFF(int64_t d_, int64_t hidden, int64_t heads, bool qkv_bias, nn::InitOptions init)
    : mlp(d_, hidden, init),
      attn(d_, hidden, heads, qkv_bias, init),
      fuse(2 * hidden, 2 * d_, true, init, /*std=*/0.0),  // std 0: all zeros, the identity start
      d(d_) {
  register_module("mlp", mlp);
  register_module("attn", attn);
  register_module("fuse", fuse);
}

std::pair<Tensor, Tensor> CAFF::forward(const Tensor& h, const Tensor& Q) {
  SANF_CHECK(h.defined() && h.dim() == 2 && h.size(1) == d, "[CAFF] h must be (B, ", d, "), got ",
             h.defined() ? shape_str(h.shape()) : "undefined");
  SANF_CHECK(!Q.defined() || (Q.dim() == 3 && Q.size(0) == h.size(0) && Q.size(2) == d), "[CAFF] tokens Q must be (",
             h.size(0), ", N, ", d, "), got ", Q.defined() ? shape_str(Q.shape()) : "");
  Tensor u = mlp.forward(h);                         // (B, H)
  Tensor o = attn.forward(h, Q);                     // (B, H), attending over m = [h; Q]
  Tensor st = fuse.forward(concat({u, o}, 1));       // (B, 2d)
  std::vector<Tensor> parts = split(st, {d, d}, 1);  // s = first d channels, t = last d
  return {parts[0], parts[1]};
}

}  // namespace sanf::flows
