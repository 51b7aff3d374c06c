// nn/attention.cpp: multi-head self-attention and the MLP (math in nn/attention.h).
#include "nn/attention.h"

#include <cmath>

#include "autograd/fast.h"

namespace sanf::nn {

namespace {
int64_t checked_head_dim(int64_t dim, int64_t heads) {
  SANF_CHECK(dim > 0 && heads > 0, "[Attention] dim and heads must be positive, got dim ", dim, ", heads ", heads);
  SANF_CHECK(dim % heads == 0, "[Attention] dim ", dim, " is not divisible by the number of heads ", heads);
  return dim / heads;
}
}  // namespace

Attention::Attention(int64_t dim_, int64_t heads_, bool qkv_bias, InitOptions init)
    : qkv(dim_, 3 * dim_, qkv_bias, init),
      proj(dim_, dim_, true, init),
      dim(dim_),
      heads(heads_),
      head_dim(checked_head_dim(dim_, heads_)),
      scale(1.0 / std::sqrt(double(head_dim))) {
  register_module("qkv", qkv);
  register_module("proj", proj);
}

Tensor Attention::forward(const Tensor& x, const Tensor& residual) {
  SANF_CHECK(x.dim() == 3 && x.size(2) == dim, "[Attention] input must be (B, N, ", dim, "), got ",
             shape_str(x.shape()));
  const int64_t B = x.size(0), N = x.size(1);
  if (qkv.precision() == MatmulPrecision::BF16) {  // autograd/fast/attention_bf16.cpp (the same steps, in bf16)
    const DType o_dt = proj.precision() == MatmulPrecision::BF16 ? DType::BF16 : DType::F32;
    return proj.forward_add(attention_bf16(qkv.forward(x), heads, scale, o_dt), residual);
  }
  // (B, N, 3D) -> (B, N, 3, H, hd) -> (3, B, H, N, hd): channel c of the 3D lands in (c / D, (c % D) / hd,
  // c % hd), the layout timm's reshape(B, N, 3, H, hd).permute(2, 0, 3, 1, 4) gives.
  Tensor t = permute(reshape(qkv.forward(x), {B, N, 3, heads, head_dim}), {2, 0, 3, 1, 4});
  Tensor q = mul(select(t, 0, 0), scale);  // (B, H, N, hd), scaled before the product as timm does
  Tensor k = select(t, 0, 1);
  Tensor v = select(t, 0, 2);
  Tensor attn = softmax(matmul(q, transpose(k, -2, -1)), -1);  // (B, H, N, N): row n attends over keys
  Tensor o = matmul(attn, v);                                  // (B, H, N, hd)
  o = reshape(transpose(o, 1, 2), {B, N, dim});                // heads side by side: (B, N, H*hd)
  return proj.forward_add(o, residual);
}

void Attention::set_precision(MatmulPrecision p) {
  qkv.set_precision(p);  // (attention's own products follow qkv's precision: see forward)
  proj.set_precision(p);
}

Tensor Mlp::forward(const Tensor& x, const Tensor& residual) {
  if (fc1.precision() == MatmulPrecision::BF16 && fc2.precision() == MatmulPrecision::BF16)  // hidden as bf16
    return fc2.forward_add(linear_bf16(x, fc1.weight_bf16, fc1.bias, true, DType::BF16), residual);
  return fc2.forward_add(fc1.forward_gelu(x), residual);
}

Mlp::Mlp(int64_t dim, int64_t hidden, InitOptions init) : fc1(dim, hidden, true, init), fc2(hidden, dim, true, init) {
  register_module("fc1", fc1);
  register_module("fc2", fc2);
}

}  // namespace sanf::nn
