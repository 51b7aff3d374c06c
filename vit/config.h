// vit/config.h: ViT architectures by name, and their record in a checkpoint's __metadata__.
//
// A ViTConfig holds everything needed to build the model and preprocess its input. Named presets follow
// timm's (and the paper's) ViT-Ti/S/B/L at patch 16 and image 224, with the in21k / augreg normalisation
// (mean = std = 0.5); a checkpoint's metadata overrides all of it.
//
// Metadata (all values strings, as safetensors requires):
//   arch        "vit-base"                 a name; need not be one of the presets
//   image_size  "224"      patch_size "16"   in_chans "3" (optional, default 3)
//   dim "768"   depth "12"   heads "12"   mlp_ratio "4"   qkv_bias "true"   ln_eps "1e-06"
//   mean        "0.5,0.5,0.5"              std "0.5,0.5,0.5"   (per channel, comma-separated)
// Every key except in_chans is required, so a converted checkpoint never falls back to a silent default
// (Hugging Face models, for one, use LayerNorm eps 1e-12). Keys the ViT does not use are ignored.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace sanf::vit {

struct ViTConfig {
  std::string name = "vit-custom";
  int64_t image_size = 224;  // square images: image_size x image_size
  int64_t patch_size = 16;
  int64_t in_chans = 3;
  int64_t dim = 768;       // D, the token width
  int64_t depth = 12;      // number of blocks
  int64_t heads = 12;      // attention heads; dim % heads == 0
  double mlp_ratio = 4.0;  // MLP hidden width = int(dim * mlp_ratio), as timm
  bool qkv_bias = true;
  double ln_eps = 1e-6;
  std::array<double, 3> mean = {0.5, 0.5, 0.5};
  std::array<double, 3> std = {0.5, 0.5, 0.5};

  int64_t grid() const { return image_size / patch_size; }  // patches per side
  int64_t num_patches() const { return grid() * grid(); }   // N
  int64_t mlp_hidden() const { return int64_t(double(dim) * mlp_ratio); }

  // Throws naming `source` and the offending field when the numbers do not make a ViT.
  void validate(const std::string& source = "ViTConfig") const;
};

// The named presets: vit-tiny (192, 12, 3), vit-small (384, 12, 6), vit-base (768, 12, 12),
// vit-large (1024, 24, 16); patch 16, image 224, mean/std 0.5. Unknown names throw listing the known ones.
ViTConfig vit_config(const std::string& name);
std::vector<std::string> vit_config_names();

// To and from a checkpoint's __metadata__. from_metadata validates, and every error names `source` (the
// file) and the key.
std::map<std::string, std::string> config_to_metadata(const ViTConfig& cfg);
ViTConfig config_from_metadata(const std::map<std::string, std::string>& meta, const std::string& source);

}  // namespace sanf::vit
