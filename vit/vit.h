// vit/vit.h: the Vision Transformer backbone, numerically timm's VisionTransformer (docs/METHOD.md §1).
//
// images (B, C, H, W), H = W = image_size, p = patch_size, G = H / p, N = G * G, D = dim:
//   patches = patchify(images, p)                      (B, N, C*p*p), row-major patch grid
//   x       = patches Wpe^T + bpe                      (B, N, D)  == conv(kernel p, stride p)
//   x       = concat(cls_token, x) + pos_embed         (B, 1+N, D)
//   x       = block_i(x), i = 0 .. depth-1             pre-norm blocks (vit/block.h)
//   out     = norm(x)                                  (B, 1+N, D): out[:, 0] = y_sem, out[:, 1:] = y_patches
//
// Parameter names are timm's, so a timm state dict (minus its classifier head) loads as is:
//   cls_token (1, 1, D), pos_embed (1, 1+N, D), patch_embed.proj.weight (D, C, p, p) (the conv layout;
//   forward views it as (D, C*p*p), which is patchify's patch order), patch_embed.proj.bias (D),
//   blocks.{i}.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}.{weight, bias}, norm.{weight, bias}.
//
// Random initialisation (docs/METHOD.md §1, timm's init_weights): every Linear weight and pos_embed
// trunc_normal(std 0.02, bounds +-2), biases 0, LayerNorm 1 / 0, cls_token normal(std 1e-6). The patch
// embedding weight is trunc_normal(std 0.02) too and its bias 0: timm leaves that conv at PyTorch's default
// (kaiming-uniform), or lecun-normal in its 'jax' mode, but the method uses one rule and the choice does not
// matter for converted weights. Draw order: patch_embed.proj.weight, cls_token, pos_embed, then each block's
// qkv, proj, fc1, fc2 weights; all from the Generator in InitOptions, drawn on the host whatever the device,
// so a seed fixes the model on every device. With InitOptions::random false everything random starts at
// zero instead (load() uses that: it overwrites it).
//
// Precision (set_precision, inference only): F32 (the default), or BF16: every GEMM of the forward (the
// patch embedding, qkv, proj, fc1, fc2, and attention's q k^T and A v) takes bf16-rounded operands and
// accumulates in f32 (nn/layers.h); the weights are converted once, in set_precision. cls_token,
// pos_embed, the layer norms, softmax, GELU and the residual stream stay f32, and so do the output tokens.
// With bf16 the tokens differ from f32's by bf16 rounding (relative ~1e-2 after a few blocks). The copies
// are snapshots: call set_precision again after loading new weights or moving the model. (TF32, cuBLAS's
// process-wide switch for f32 GEMMs, is kernels::set_tf32; apps/extract.h maps `--precision tf32` to it.)
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "vit/block.h"
#include "vit/config.h"

namespace sanf::vit {

// The patch embedding: a stride-p, kernel-p convolution stored as timm's Conv2d ("proj.weight",
// "proj.bias"), computed as patchify + linear.
class PatchEmbed : public nn::Module {
 public:
  PatchEmbed(int64_t in_chans, int64_t dim, int64_t patch, nn::InitOptions init = {});
  Tensor forward(const Tensor& images);  // (B, C, H, W) -> (B, (H/p)*(W/p), D)
  void set_precision(nn::MatmulPrecision p);

  Tensor weight, bias;  // (D, C, p, p), (D)
  Tensor weight_bf16;   // (D, C*p*p) bf16 in BF16 precision, else undefined; not a parameter
  int64_t patch;
};

class VisionTransformer : public nn::Module {
 public:
  explicit VisionTransformer(const ViTConfig& cfg, nn::InitOptions init = {});

  // A canonical checkpoint (safetensors; architecture from its __metadata__, see vit/config.h), loaded
  // strictly. With image_size > 0 the model runs at that size instead, the position embedding resampled
  // bicubically from the checkpoint's grid (vit/pos_embed.h, antialias as given).
  static std::unique_ptr<VisionTransformer> load(const std::string& path, int64_t image_size = 0,
                                                 DType dtype = DType::F32, Device device = Device::CPU,
                                                 bool antialias = false);
  // Writes every parameter under its timm name, with the configuration as metadata (atomically).
  void save(const std::string& path);

  // images: (B, C, image_size, image_size) -> tokens (B, 1+N, D) after the final norm.
  Tensor forward(const Tensor& images);

  // The GEMM precision of forward (see above). BF16 needs f32 weights; forward then refuses to run while
  // autograd would record (use NoGradGuard).
  void set_precision(nn::MatmulPrecision p);
  nn::MatmulPrecision precision() const {  // every module is set together: the patch embedding tells
    return patch_embed.weight_bf16.defined() ? nn::MatmulPrecision::BF16 : nn::MatmulPrecision::F32;
  }

  const ViTConfig& config() const { return cfg; }

  ViTConfig cfg;
  Tensor cls_token, pos_embed;  // (1, 1, D), (1, 1+N, D)
  PatchEmbed patch_embed;
  std::vector<std::unique_ptr<Block>> blocks;
  nn::LayerNorm norm;
};

}  // namespace sanf::vit
