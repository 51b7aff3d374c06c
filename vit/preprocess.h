// vit/preprocess.h: images as stored (u8, any size, gray or RGB) to the backbone's input.
//
// Per image: u8 (C, H, W) with C = 1 (gray, replicated to 3 channels), 3 (RGB) or 4 (RGBA: alpha dropped);
// resized to (S, S) with S = cfg.image_size, each axis on its own: bilinear when it grows (PyTorch's
// F.interpolate(mode='bilinear', align_corners=False)), area averaging when it shrinks (PyTorch's
// mode='area', i.e. adaptive average pooling: an antialiased box filter); then x/255, minus mean, over std
// per channel. The result is f32 (B, 3, S, S) on the CPU.
#pragma once

#include <vector>

#include "core/tensor.h"
#include "vit/config.h"

namespace sanf::vit {

Tensor preprocess(const std::vector<Tensor>& images, const ViTConfig& cfg);

// One f32 image (C, H, W) resized to (C, out_h, out_w) as above (no normalisation).
Tensor resize_image(const Tensor& image, int64_t out_h, int64_t out_w);

}  // namespace sanf::vit
