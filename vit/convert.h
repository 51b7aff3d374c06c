// vit/convert.h: converting a published ViT checkpoint into the project's canonical one.
//
// Canonical checkpoint: safetensors with timm's VisionTransformer state-dict names, all f32, and nothing but
// the backbone:
//   cls_token (1, 1, D)   pos_embed (1, 1+N, D)   patch_embed.proj.weight (D, C, p, p)   patch_embed.proj.bias (D)
//   blocks.{i}.norm1.{weight,bias} (D)       blocks.{i}.attn.qkv.weight (3D, D)   blocks.{i}.attn.qkv.bias (3D)
//   blocks.{i}.attn.proj.weight (D, D), .bias (D)   blocks.{i}.norm2.{weight,bias} (D)
//   blocks.{i}.mlp.fc1.weight (H, D), .bias (H)     blocks.{i}.mlp.fc2.weight (D, H), .bias (D)
//   norm.{weight,bias} (D)
// and __metadata__ = vit/config.h's keys (arch, image_size, patch_size, in_chans, dim, depth, heads, mlp_ratio,
// qkv_bias, ln_eps, mean, std) plus "format": "sanf-vit", "source": "timm" | "hf" | "torchvision" and
// "norm_source": where mean and std came from, since a wrong normalisation silently degrades every feature:
//   "from --mean/--std"                                  the options (ConvertOptions::mean / std)
//   "from DIR/config.json pretrained_cfg"                a timm Hub config beside the checkpoint
//   "from DIR/preprocessor_config.json"                  a Hugging Face image processor config beside it
//   "default for timm: 0.5 per channel, the ImageNet-21k and augreg ViTs', as no config.json with
//    pretrained_cfg is beside the checkpoint; ImageNet-1k models such as DeiT need --mean/--std"
//   "default for hf: ..." (no preprocessor_config.json), "default for torchvision: ImageNet's, as ..."
// or "mean <one of those>; std <another>" when the two came from different places. `sanf convert` prints
// "normalisation: mean M std S (<norm_source>)".
//
// Sources, by naming (see vit/convert_names.cpp for the full tables):
//   timm         the canonical names themselves (a "module." or "model." wrapper prefix is stripped);
//                head.*, pre_logits.* dropped; fc_norm.* is an error (those models pool by averaging)
//   hf           Hugging Face ViTModel / ViTForImageClassification (with or without "vit."): separate
//                query/key/value are stacked into qkv in that order; pooler.*, classifier.*,
//                embeddings.mask_token dropped (the pooler is NOT the class token)
//   torchvision  vit_b_16 & co.: class_token, conv_proj, encoder.pos_embedding, in_proj_* (already q,k,v),
//                mlp.0/mlp.3 (or the older mlp.linear_1/linear_2), encoder.ln; heads.* dropped
// Anything else is an error naming the tensor: a silently ignored tensor is a silently wrong model.
//
// The architecture is read off the tensors (D from cls_token, depth from the block indices, patch size and
// channels from the patch weight, image size from the position grid, MLP width from fc1, qkv bias from its
// presence); heads cannot be, so they come from the options, the source's config file, the arch name, or
// the usual width -> heads table. Every tensor's shape is then checked against that architecture.
// F16 and BF16 inputs are widened to f32 exactly; other dtypes are rejected.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace sanf::vit {

struct ConvertOptions {
  std::string source = "timm";    // "timm", "hf" or "torchvision": how the input's tensors are named
  std::string arch;               // "vit-tiny" ... "vit-large": checked against the tensors; empty: infer
  int64_t heads = 0;              // 0: from the source's config, else the arch name, else the width table
  std::vector<double> mean, std;  // 3 values each; empty: from the source's config, else the source default
  double ln_eps = 0;              // 0: from the source's config, else the source default (hf: 1e-12)
};

// What config files next to the checkpoint say. Hugging Face: config.json (hidden_size,
// num_hidden_layers, num_attention_heads, intermediate_size, image_size, patch_size, num_channels, qkv_bias,
// layer_norm_eps, hidden_act) and preprocessor_config.json (image_mean, image_std). timm (Hub layout):
// config.json's pretrained_cfg.mean / .std. Declared sizes are checked against the tensors; eps, heads and
// mean/std fill in what the options leave unset.
struct SourceConfig {
  std::string path;  // the config.json read (for error messages); empty when there was none
  std::optional<int64_t> dim, depth, heads, mlp_hidden, image_size, patch_size, in_chans;
  std::optional<bool> qkv_bias;
  std::optional<double> ln_eps;
  std::vector<double> mean, std;  // empty when not given
  std::string mean_std_from;      // where mean/std were read, e.g. "dir/config.json pretrained_cfg"
};

// Reads the config files of `source` found in the directory of `checkpoint_path` (none for torchvision).
// Missing files give an empty SourceConfig; a malformed one is an error naming the file and key.
SourceConfig read_source_config(const std::string& source, const std::string& checkpoint_path);

using StateDict = std::map<std::string, Tensor>;
using Metadata = std::map<std::string, std::string>;

// The in-memory conversion: source-named tensors in, canonical f32 tensors and metadata out. Errors name
// `source_path` and the tensor (by its canonical name and, when different, its source name).
std::pair<StateDict, Metadata> convert_state_dict(StateDict in, const ConvertOptions& opts,
                                                  const std::string& source_path, const SourceConfig& config = {});

// File to file: reads `in` (safetensors) and the config beside it, converts, and writes `out` atomically
// (tensors in model order). Nothing is written unless the whole conversion succeeded.
void convert_checkpoint(const std::string& in, const std::string& out, const ConvertOptions& opts);

}  // namespace sanf::vit
