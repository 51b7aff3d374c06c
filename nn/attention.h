// nn/attention.h: multi-head self-attention and the transformer MLP, exactly as timm's VisionTransformer.
//
// Attention (timm's `Attention`), for tokens x: (B, N, D), H heads of width hd = D / H:
//   [q, k, v] = split(x Wqkv^T + bqkv)            Wqkv: (3D, D), one Linear named "qkv"
//   q, k, v   -> (B, H, N, hd)                     the 3D channels are laid out as (3, H, hd)
//   A         = softmax(q k^T * hd^-1/2) over keys (B, H, N, N)
//   o         = (A v) -> (B, N, H*hd) = (B, N, D)  heads concatenated in order
//   out       = o Wproj^T + bproj                  Wproj: (D, D), "proj"
// Parameters: "qkv.weight", "qkv.bias" (absent when qkv_bias is false), "proj.weight", "proj.bias".
//
// Mlp (timm's `Mlp`): fc1 Linear(D, hidden) -> exact (erf) GELU -> fc2 Linear(hidden, D);
// parameters "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias".
//
// Both are built from the differentiable ops (linear, reshape, permute, matmul, softmax, and linear_gelu for
// fc1 + GELU), so their gradients come from those ops' backwards; tests/vit/ checks them by finite
// differences.
//
// set_precision(BF16) (inference only, nn/layers.h): every Linear's GEMM takes bf16 operands, and so do
// attention's two batched products q k^T and A v (attention_bf16, autograd/fast/attention_bf16.cpp: q, k, A
// and v rounded to bf16, f32 accumulation); the scaling, the softmax and the GELU stay f32 (the softmax's
// output is stored as bf16 at once, softmax_bf16: the same numbers the product would round it to).
// Likewise the results that only feed the next bf16 GEMM are handed on as bf16, rounded in the GEMM's
// epilogue (fc1 + GELU before fc2, A v before proj): the same numbers as before, without an f32 copy
// written and read back. On CUDA the whole attention can be one fused kernel (kernels/fast/attention.h, opt-in).
//
// Both forwards take an optional residual r (the block's stream, (B, N, D)) and then return r + out, as
// add(r, forward(x)) would: in f32 that is that op; in bf16 the last GEMM adds it (linear_bf16's residual),
// so the block's stream is written once per half-block instead of written, read back and added.
#pragma once

#include "nn/layers.h"

namespace sanf::nn {

class Attention : public Module {
 public:
  Attention(int64_t dim, int64_t heads, bool qkv_bias = true, InitOptions init = {});
  Tensor forward(const Tensor& x, const Tensor& residual = Tensor());  // x: (B, N, D) -> (B, N, D)
  void set_precision(MatmulPrecision p);

  Linear qkv, proj;
  int64_t dim, heads, head_dim;
  double scale;  // head_dim^-0.5
};

class Mlp : public Module {
 public:
  Mlp(int64_t dim, int64_t hidden, InitOptions init = {});
  // x: (..., D) -> (..., D). fc1 and the GELU are one fused op (linear_gelu: the GEMM applies the GELU as it
  // writes, no pass of its own over the (..., hidden) activations); the same math as gelu(fc1.forward(x)).
  Tensor forward(const Tensor& x, const Tensor& residual = Tensor());
  void set_precision(MatmulPrecision p) {
    fc1.set_precision(p);
    fc2.set_precision(p);
  }

  Linear fc1, fc2;
};

}  // namespace sanf::nn
