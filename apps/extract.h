// apps/extract.h: the backbone over a dataset: the tokens the flow will see.
//
// open_backbone takes "random:ARCH" (a seeded, timm-initialised ViT of a named architecture, optionally at
// another image or patch size: what the offline demo uses, since no pretrained weights can be downloaded
// here) or the path of a canonical checkpoint (made by `sanf convert`).
// extract_features streams the dataset in batches (images are read, preprocessed and embedded batch by
// batch) and reports progress on stderr.
#pragma once

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
};
std::unique_ptr<vit::VisionTransformer> open_backbone(const BackboneOptions& opt);

struct Features {
  Tensor cls;      // f32 (n, D): y_sem
  Tensor patches;  // f32 (n, N, D): y_patches
  Tensor labels;   // i64 (n)
};

// Samples `indices` of `ds` (all when empty), batch by batch, on the model's device; results on the CPU.
Features extract_features(vit::VisionTransformer& model, const Dataset& ds, const std::vector<int64_t>& indices,
                          int64_t batch_size, bool progress = true);

}  // namespace sanf::apps
