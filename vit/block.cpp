// vit/block.cpp: the pre-norm transformer block (math in vit/block.h).
#include "vit/block.h"

namespace sanf::vit {

Block::Block(int64_t dim, int64_t heads, int64_t mlp_hidden, bool qkv_bias, double ln_eps, nn::InitOptions init)
    : norm1(dim, ln_eps, init), attn(dim, heads, qkv_bias, init), norm2(dim, ln_eps, init), mlp(dim, mlp_hidden, init) {
  register_module("norm1", norm1);
  register_module("attn", attn);
  register_module("norm2", norm2);
  register_module("mlp", mlp);
}

Tensor Block::forward(const Tensor& x) {
  // In bf16 the norms' outputs only feed bf16 GEMMs (qkv, fc1), which would round them: they are written as
  // bf16 at once (the same numbers).
  const bool bf16 = attn.qkv.precision() == nn::MatmulPrecision::BF16;
  const bool mlp_bf16 = mlp.fc1.precision() == nn::MatmulPrecision::BF16;
  Tensor h = attn.forward(bf16 ? norm1.forward_bf16(x) : norm1.forward(x), x);  // x + attn(norm1(x)), x: (B, N, D)
  return mlp.forward(mlp_bf16 ? norm2.forward_bf16(h) : norm2.forward(h), h);   // h + mlp(norm2(h))
}

}  // namespace sanf::vit
