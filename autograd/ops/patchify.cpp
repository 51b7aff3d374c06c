// autograd/ops/patchify.cpp: cut images into non-overlapping p x p patches, one flattened patch per token.
//
// images (B, C, H, W) -> patches (B, Hp*Wp, C*p*p), Hp = H/p, Wp = W/p:
//   patches[b, py*Wp + px, (c*p + ky)*p + kx] = images[b, c, py*p + ky, px*p + kx]
// A composite of views, so its gradient comes from theirs (reshape, permute, and the one copy that the
// final reshape makes of the permuted view):
//   (B, C, H, W) -> reshape (B, C, Hp, p, Wp, p) -> permute (B, Hp, Wp, C, p, p) -> reshape (B, Hp*Wp, C*p*p)
// The patch vector's order (c, ky, kx) is that of a conv weight (D, C, p, p) flattened to (D, C*p*p), so a
// stride-p convolution with kernel p (a ViT's patch embedding) equals patchify followed by linear with that
// weight: out[b, py*Wp + px, o] = conv[b, o, py, px].
#include "autograd/ops/common.h"

namespace sanf {

using namespace ops_detail;

Tensor patchify(const Tensor& images, int64_t p) {
  check_float("patchify", images);
  SANF_CHECK(images.dim() == 4, "[patchify] images must be (B, C, H, W), got ", shape_str(images.shape()));
  SANF_CHECK(p > 0, "[patchify] patch size must be positive, got ", p);
  const int64_t B = images.size(0), C = images.size(1), H = images.size(2), W = images.size(3);
  SANF_CHECK(H % p == 0 && W % p == 0, "[patchify] image size ", H, " x ", W, " is not divisible by the patch size ", p,
             " (images ", shape_str(images.shape()), ")");
  const int64_t Hp = H / p, Wp = W / p;
  Tensor grid = reshape(images, {B, C, Hp, p, Wp, p});
  return reshape(permute(grid, {0, 2, 4, 1, 3, 5}), {B, Hp * Wp, C * p * p});
}

}  // namespace sanf
