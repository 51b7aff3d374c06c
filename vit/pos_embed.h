// vit/pos_embed.h: resampling a ViT's learned position embedding to another patch grid.
//
// When a model runs at an image size other than its checkpoint's, the grid of patch positions changes
// (e.g. 14 x 14 at 224 -> 24 x 24 at 384). The class position is kept as is; the G x G grid of patch
// positions is treated as a D-channel image and resized bicubically to G' x G', as timm's
// resample_abs_pos_embed does with torch.nn.functional.interpolate(mode='bicubic', align_corners=False).
//
// Bicubic is separable: out[i, j] = sum_a sum_b wy[i][a] wx[j][b] in[a, b], with 1-D weights per output
// index. Two variants, matching PyTorch exactly (up to float rounding; this computes in double):
//  - antialias = false (F.interpolate's default): Keys' cubic with a = -0.75 on the 4 nearest inputs of
//    the source coordinate s = (i + 0.5) * in / out - 0.5; taps past the border are clamped to the edge.
//  - antialias = true (timm >= 0.9's resample_abs_pos_embed default): PIL's filter, Keys' cubic with
//    a = -0.5, stretched by in / out when shrinking (so every input contributes), taps limited to the
//    image and the weights renormalised to sum to 1.
// The project's default is antialias = false (see docs/DESIGN.md). For upsampling both are interpolating
// filters and differ only slightly; for downsampling the antialiased one averages more inputs.
//
// Host math, not differentiable: it runs once, when a checkpoint is loaded.
#pragma once

#include <vector>

#include "core/tensor.h"

namespace sanf::vit {

// The (out x in) matrix of 1-D interpolation weights, row i for output index i.
std::vector<std::vector<double>> bicubic_weights(int64_t in, int64_t out, bool antialias);

// pos_embed: (1, 1 + old_grid^2, D) -> (1, 1 + new_grid^2, D), same dtype and device.
Tensor resample_pos_embed(const Tensor& pos_embed, int64_t old_grid, int64_t new_grid, bool antialias = false);

}  // namespace sanf::vit
