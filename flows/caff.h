// flows/caff.h: CAFF, the class-attention feature fusion that computes a coupling's scale and shift.
//
// CAFF(h, Q), h: (B, d) one half of the class token, Q: (B, N, d) the same channels of the patch tokens:
//   u = MLP(h)                    = relu(W3 relu(W2 relu(W1 h + b1) + b2) + b3)        (B, H)
//   m = [h; Q]                                                                          (B, N+1, d)
//   q = Wq h + bq,  K = Wk m + bk,  V = Wv m + bv                      per head: (1, dh), (N+1, dh), dh = d/heads
//   A = softmax(q K^T / sqrt(dh)),  o = (Wo (A V) + bo) * gamma                         (B, H)
//   [s, t] = split(Wf [u; o] + bf)                                                      (B, d) each
// Wf and bf start at zero, so a fresh CAFF returns s = t = 0 and the coupling it drives is the identity.
// Without patch tokens (Q undefined: the "no CAFF" ablation) m = [h], a single key, so A = 1 and o depends
// on h through V only. flows/caff.cpp evaluates the attention with Wk and Wv moved off the N+1 tokens (the
// same numbers, a small fraction of the arithmetic); the gradient of bk is zero by construction (it shifts
// all of a head's scores alike, which softmax ignores), as in any attention with a key bias.
//
// Initialisation: every other Linear is timm's truncated normal with std 1/sqrt(3 * in) (the variance of
// PyTorch's default nn.Linear init, U(+-1/sqrt(in)), which the authors' subnetworks use; timm's 0.02 would
// make u and o vanish through three layers) and zero biases; gamma is 1.
//
// Parameter names: mlp.fc{1,2,3}.{weight,bias}, attn.{q,k,v,proj}.{weight,bias}, attn.gamma, fuse.{weight,bias}.
#pragma once

#include <utility>

#include "nn/layers.h"

namespace sanf::flows {

// Linear(d, H) -> ReLU -> Linear(H, H) -> ReLU -> Linear(H, H) -> ReLU.
class ReluMLP : public nn::Module {
 public:
  ReluMLP(int64_t in, int64_t hidden, nn::InitOptions init);
  Tensor forward(const Tensor& x);  // x: (B, in) -> (B, hidden)
  nn::Linear fc1, fc2, fc3;
};

// Class attention: one query (from h) against the keys and values of all tokens of m = [h; Q].
class ClassAttention : public nn::Module {
 public:
  ClassAttention(int64_t d, int64_t out, int64_t heads, bool qkv_bias, nn::InitOptions init);
  // h: (B, d), Q: (B, N, d) or undefined (then m = [h]) -> (B, out)
  Tensor forward(const Tensor& h, const Tensor& Q);
  // The same, written as the formula above: keys and values of all N+1 tokens of m = [h; Q], then softmax
  // and the weighted sum. The reference that forward's rearrangement is tested against; with `weights` it
  // also returns A as (B, N+1, heads), the layout of `recorded`.
  Tensor forward_direct(const Tensor& h, const Tensor& Q, Tensor* weights = nullptr);
  nn::Linear q, k, v, proj;
  Tensor gamma;  // (out), a learned per-channel scale
  int64_t heads;
  // With `record` on, forward keeps its attention weights A in `recorded`: (B, N+1, heads), detached,
  // row 0 the weight on h's own key, rows 1..N those on the patch tokens (for anomaly maps, flows/flow.h).
  bool record = false;
  Tensor recorded;
};

class CAFF : public nn::Module {
 public:
  CAFF(int64_t d, int64_t hidden, int64_t heads, bool qkv_bias, nn::InitOptions init);
  // h: (B, d), Q: (B, N, d) or undefined -> {s, t}, each (B, d)
  std::pair<Tensor, Tensor> forward(const Tensor& h, const Tensor& Q);
  ReluMLP mlp;
  ClassAttention attn;
  nn::Linear fuse;  // Wf: 2H -> 2d, zero at construction
  int64_t d;
};

}  // namespace sanf::flows
