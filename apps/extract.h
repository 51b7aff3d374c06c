// apps/extract.h: the backbone over a dataset: the tokens the flow will see.
//
// open_backbone takes "random:ARCH" (a seeded, timm-initialised ViT of a named architecture, optionally at
// another image or patch size: what the offline demo uses, since no pretrained weights can be downloaded
// here) or the path of a canonical checkpoint (made by `sanf convert`).
// extract_to_file streams the dataset through the backbone in batches and writes each batch's tokens
// straight into a safetensors file (SafetensorsWriter), so memory stays bounded by one batch however large
// the dataset is. The file appears only when complete (atomic); Ctrl-C between batches removes it.
//
// File layout ("sanf-features"): cls (n, D) = y_sem, patches (n, N, D) = the patch tokens, in f32 or f16;
// labels (n) and indices (n), i64: each row's class label and its index in the dataset; metadata: the
// backbone's ViT config and whatever the caller adds.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "apps/datasets.h"
#include "vit/vit.h"

namespace sanf::apps {

struct BackboneOptions {
  std::string spec;            // "random:vit-tiny" or a checkpoint path
  int64_t image_size = 0;      // 0: the architecture's (or checkpoint's)
  int64_t patch_size = 0;      // random backbones only; 0: the architecture's
  uint64_t seed = 0;           // random backbones only
  Device device = Device::CPU;

  bool is_random() const { return spec.rfind("random:", 0) == 0; }
};
std::unique_ptr<vit::VisionTransformer> open_backbone(const BackboneOptions& opt);
// The config open_backbone would build, without building it (reads only a checkpoint's header).
vit::ViTConfig backbone_config(const BackboneOptions& opt);

struct ExtractOptions {
  int64_t batch_size = 64;
  bool f16 = false;       // store tokens as f16 (half the disk and page cache; ~3 significant digits)
  bool progress = true;   // a progress line on stderr: done/total, img/s, ETA
};

// Samples `indices` of `ds`, in that order, batch by batch on the model's device, into `path`.
void extract_to_file(vit::VisionTransformer& model, const Dataset& ds, const std::vector<int64_t>& indices,
                     const std::string& path, const std::map<std::string, std::string>& metadata,
                     const ExtractOptions& opt);

}  // namespace sanf::apps
