// vit/block.h: the pre-norm transformer block of timm's VisionTransformer.
//
//   x = x + attn(norm1(x))      norm1, norm2: LayerNorm(D, eps)
//   x = x + mlp(norm2(x))       mlp: D -> hidden -> D with exact GELU
// Parameter names as timm: "norm1.*", "attn.qkv.*", "attn.proj.*", "norm2.*", "mlp.fc1.*", "mlp.fc2.*".
// timm's LayerScale and DropPath are identities for the checkpoints this project loads (no parameters,
// inference only), so they are left out. The block lives in vit/ (not nn/) because the arrangement is the
// ViT's; its parts (nn::Attention, nn::Mlp, nn::LayerNorm) are general.
#pragma once

#include "nn/attention.h"

namespace sanf::vit {

class Block : public nn::Module {
 public:
  Block(int64_t dim, int64_t heads, int64_t mlp_hidden, bool qkv_bias = true, double ln_eps = 1e-6,
        nn::InitOptions init = {});
  Tensor forward(const Tensor& x);  // x: (B, N, D) -> (B, N, D)
  void set_precision(nn::MatmulPrecision p) {  // the GEMMs of attn and mlp (nn/attention.h)
    attn.set_precision(p);
    mlp.set_precision(p);
  }

  nn::LayerNorm norm1;
  nn::Attention attn;
  nn::LayerNorm norm2;
  nn::Mlp mlp;
};

}  // namespace sanf::vit
