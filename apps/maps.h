// apps/maps.h: anomaly maps: where in an image the flow finds what makes it anomalous.
//
// Two kinds, both per patch token, both from the flow alone (the frozen backbone's tokens go in):
//   attention  the weight the CAFF class attention put on each patch token, averaged over its heads and over
//              the 2K CAFFs of the flow: exactly the weights of the scoring forward (flows/flow.h
//              patch_attention). It shows where the flow's conditioning looked; on a pooled flow it lives on
//              the pooled g x g grid.
//   gradient   the gradient of the image's NLL with respect to each patch token, through the autograd
//              engine, reduced to its L2 norm over the D channels: how strongly the score reacts to that
//              token, whichever direction (a signed reduction, the sum over channels, lets channels cancel;
//              gradient x input would weigh the score's sensitivity by the token's own magnitude, which
//              the backbone's final layer norm makes nearly uniform). It lives on the backbone's full G x G
//              grid, pooling or not. The NLL of one image depends only on its own tokens, so one backward
//              of the batch's summed NLL gives every image's gradient.
// A map is upsampled to the image bilinearly (vit/preprocess.h resize_image) and drawn over the image as a
// heat palette (overlay_heatmap). Pixel-level AUROC (pixel_auroc) compares maps with ground-truth masks
// at the backbone's input resolution, anomalib's localization metric.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/features.h"
#include "flows/flow.h"

namespace sanf::apps {

enum class MapKind { None, Attention, Gradient };
MapKind parse_map_kind(const std::string& name);  // "none" | "attention" | "gradient"; else throws
const char* map_kind_name(MapKind kind);

// y (B, D), P (B, N, D) on the flow's device -> (B, g, g) f32 on the CPU, g as above. Needs grad mode on
// (gradient); leaves the flow's parameters' gradients as they were.
Tensor patch_maps(flows::Flow& flow, MapKind kind, const Tensor& y, const Tensor& P);

// map (g, g) f32 -> (H, W) f32, bilinear.
Tensor upsample_map(const Tensor& map, int64_t H, int64_t W);

// The image u8 (C, H, W), C = 1, 3 or 4, in grey, with map (H, W) over it, clamped to [lo, hi] and drawn
// in a black-red-yellow-white heat palette at 60% opacity -> u8 (3, H, W).
Tensor overlay_heatmap(const Tensor& image_u8, const Tensor& map, double lo, double hi);
// A (g, g) map of patch_maps upsampled to the image and drawn over it, normalised to its own range (the
// form `sanf predict` writes and report.html shows).
Tensor map_over_image(const Tensor& image_u8, const Tensor& grid_map);

// Images laid out on a grid, one picture of many maps (eval's maps.png): rows[r][c] is a u8 (C, H, W) image,
// C = 1 (grey, repeated), 3 or 4 (alpha dropped), or an undefined tensor for an empty cell. Each image is
// scaled to fit a cell x cell square, by a whole factor with nearest neighbour when it is smaller (small
// images keep sharp pixels), by area averaging when it is larger, and centred in its cell; cells are
// `pad` white pixels apart. -> u8 (3, rows * (cell + pad) + pad, cols * (cell + pad) + pad), cols the
// longest row.
Tensor image_sheet(const std::vector<std::vector<Tensor>>& rows, int64_t cell, int64_t pad = 4);

// Pixel-level AUROC over many images, accumulated one image at a time (so masks of any size never pile
// up): add(map, mask) takes a map (S, S) f32 and its mask u8 (1, Hm, Wm) of any size (nonzero = anomalous
// pixel) or an undefined mask (no anomalous pixel). The mask is resized to S x S by area averaging and a
// pixel counts as anomalous when at least half of its area is. auroc() is apps/metrics.h's AUROC over
// every pixel added.
class PixelAuroc {
 public:
  void add(const Tensor& map, const Tensor& mask);
  double auroc() const;
  int64_t pixels() const { return int64_t(scores_.size()); }

 private:
  std::vector<double> scores_;
  std::vector<int> labels_;
};

// metrics.json's "pixel_auroc" of `sanf eval --masks`: the pixel AUROC of each map kind (attention unless the
// flow is no-CAFF, and gradient) over the test features against test_ds's masks at image_size x image_size,
// and of a map drawn uniformly at random per patch (seed 0; the chance line), plus "resolution".
nlohmann::json pixel_aurocs(flows::Flow& flow, const FeatureSet& test, const Dataset& test_ds, int64_t image_size,
                            Device device);

}  // namespace sanf::apps
