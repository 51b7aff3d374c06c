// vit/vit.cpp: the ViT backbone: construction, forward, checkpoints (math in vit/vit.h).
#include "vit/vit.h"

#include <map>

#include "autograd/fast.h"
#include "core/safetensors.h"
#include "vit/pos_embed.h"

namespace sanf::vit {

PatchEmbed::PatchEmbed(int64_t in_chans, int64_t dim, int64_t p, nn::InitOptions init) : patch(p) {
  weight = init.random ? trunc_normal({dim, in_chans, p, p}, 0.02, -2.0, 2.0, init.dtype, init.device, init.gen)
                       : zeros({dim, in_chans, p, p}, init.dtype, init.device);
  bias = zeros({dim}, init.dtype, init.device);
  // Dotted names: the conv is one level down in timm ("patch_embed.proj.weight"), but it is not a module
  // of its own here, only the two tensors.
  register_parameter("proj.weight", weight);
  register_parameter("proj.bias", bias);
}

Tensor PatchEmbed::forward(const Tensor& images) {
  // conv(kernel p, stride p) == patchify + linear with the weight viewed as (D, C*p*p): both order a
  // patch's inputs as (c, ky, kx). images: (B, C, H, W) -> (B, N, C*p*p) -> (B, N, D).
  const int64_t D = weight.size(0);
  if (weight_bf16.defined()) return linear_bf16(patchify(images, patch), weight_bf16, bias);
  return linear(patchify(images, patch), reshape(weight, {D, -1}), bias);
}

void PatchEmbed::set_precision(nn::MatmulPrecision p) {
  weight_bf16 = nn::bf16_weight(p, reshape(detach(weight), {weight.size(0), -1}), "PatchEmbed");
}

namespace {
// The config is validated before any member is built (the initialiser list runs in declaration order).
const ViTConfig& valid(const ViTConfig& cfg) {
  cfg.validate("VisionTransformer(" + cfg.name + ")");
  return cfg;
}
}  // namespace

VisionTransformer::VisionTransformer(const ViTConfig& c, nn::InitOptions init)
    : cfg(valid(c)), patch_embed(cfg.in_chans, cfg.dim, cfg.patch_size, init), norm(cfg.dim, cfg.ln_eps, init) {
  const int64_t D = cfg.dim, N = cfg.num_patches();
  if (init.random) {
    // normal, std 1e-6; drawn on the host (as trunc_normal is) so a seed gives the same model on every
    // device (randn on CUDA would draw from cuRAND's stream instead).
    cls_token = sanf::to(mul(randn({1, 1, D}, init.dtype, Device::CPU, init.gen), 1e-6), init.device);
    pos_embed = trunc_normal({1, 1 + N, D}, 0.02, -2.0, 2.0, init.dtype, init.device, init.gen);
  } else {
    cls_token = zeros({1, 1, D}, init.dtype, init.device);
    pos_embed = zeros({1, 1 + N, D}, init.dtype, init.device);
  }
  register_parameter("cls_token", cls_token);
  register_parameter("pos_embed", pos_embed);
  register_module("patch_embed", patch_embed);
  for (int64_t i = 0; i < cfg.depth; ++i) {
    blocks.push_back(std::make_unique<Block>(D, cfg.heads, cfg.mlp_hidden(), cfg.qkv_bias, cfg.ln_eps, init));
    register_module("blocks." + std::to_string(i), *blocks.back());
  }
  register_module("norm", norm);
}

Tensor VisionTransformer::forward(const Tensor& images) {
  const int64_t S = cfg.image_size;
  SANF_CHECK(images.dim() == 4 && images.size(1) == cfg.in_chans && images.size(2) == S && images.size(3) == S,
             "[VisionTransformer] images must be (B, ", cfg.in_chans, ", ", S, ", ", S, ") for ", cfg.name, ", got ",
             shape_str(images.shape()));
  SANF_CHECK(images.dtype() == pos_embed.dtype() && images.device() == pos_embed.device(),
             "[VisionTransformer] images are ", images.info(), " but the model is ", pos_embed.info());
  SANF_CHECK(precision() == nn::MatmulPrecision::F32 || !grad_enabled() || !pos_embed.requires_grad(),
             "[VisionTransformer] ", cfg.name, " is in bf16 precision, which is inference-only: run forward under "
             "NoGradGuard, or set_precision(f32) to train");
  const int64_t B = images.size(0), D = cfg.dim;
  Tensor x = patch_embed.forward(images);            // (B, N, D)
  x = concat({expand(cls_token, {B, 1, D}), x}, 1);  // (B, 1+N, D), class token first
  x = x + pos_embed;                                 // (1, 1+N, D) broadcast over B
  for (auto& block : blocks) x = block->forward(x);
  return norm.forward(x);
}

void VisionTransformer::set_precision(nn::MatmulPrecision p) {
  patch_embed.set_precision(p);
  for (auto& block : blocks) block->set_precision(p);
}

void VisionTransformer::save(const std::string& path) { save_safetensors(path, state_dict(), config_to_metadata(cfg)); }

std::unique_ptr<VisionTransformer> VisionTransformer::load(const std::string& path, int64_t image_size, DType dtype,
                                                           Device device, bool antialias) {
  SafetensorsFile file = SafetensorsFile::open(path);
  ViTConfig cfg = config_from_metadata(file.metadata(), path);
  const int64_t ckpt_grid = cfg.grid();
  if (image_size > 0) {
    cfg.image_size = image_size;
    cfg.validate(path + " at image size " + std::to_string(image_size));
  }
  std::map<std::string, Tensor> state;
  for (const TensorEntry& e : file.entries()) state[e.name] = file.get(e.name);  // zero-copy views
  if (cfg.grid() != ckpt_grid && state.count("pos_embed")) {
    const Tensor& pe = state["pos_embed"];
    SANF_CHECK(pe.dim() == 3 && pe.size(0) == 1 && pe.size(1) == 1 + ckpt_grid * ckpt_grid, path,
               ": tensor 'pos_embed' has shape ", shape_str(pe.shape()), ", its metadata's ", ckpt_grid, " x ",
               ckpt_grid, " grid needs (1, ", 1 + ckpt_grid * ckpt_grid, ", D)");
    state["pos_embed"] = resample_pos_embed(pe, ckpt_grid, cfg.grid(), antialias);
  }
  // Zero-filled, not drawn: the strict load overwrites every value (or fails and the model is discarded).
  auto model = std::make_unique<VisionTransformer>(cfg, nn::InitOptions{nullptr, dtype, device, false});
  model->load_state_dict(state, path);
  return model;
}

}  // namespace sanf::vit
