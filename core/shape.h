// core/shape.h: shapes, strides and the fixed-size Layout that kernels receive.
//
// Shapes and strides count elements, not bytes. A Layout is a plain struct (no heap) so it can be passed
// by value into a CUDA kernel.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace sanf {

using Shape = std::vector<int64_t>;
constexpr int kMaxDims = 8;

// Row-major ("C-contiguous") strides for a shape.
Shape contiguous_strides(const Shape& shape);
int64_t numel(const Shape& shape);
std::string shape_str(const Shape& shape);  // "(2, 3, 4)"
// Normalise a possibly negative dim index against ndim; throws naming `op` when out of range.
int normalize_dim(int dim, int ndim, const char* op);
// NumPy broadcasting of two shapes; throws naming `op` and both shapes when incompatible.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

struct Layout {
  int ndim = 0;
  int64_t shape[kMaxDims] = {};
  int64_t strides[kMaxDims] = {};
};
Layout make_layout(const Shape& shape, const Shape& strides);

// Dense row-major (strides of size-1 dims ignored), and the element count, of a Layout.
inline bool layout_is_contiguous(const Layout& l) {
  int64_t expected = 1;
  for (int d = l.ndim - 1; d >= 0; --d) {
    if (l.shape[d] == 1) continue;
    if (l.strides[d] != expected) return false;
    expected *= l.shape[d];
  }
  return true;
}
inline int64_t layout_numel(const Layout& l) {
  int64_t n = 1;
  for (int d = 0; d < l.ndim; ++d) n *= l.shape[d];
  return n;
}

}  // namespace sanf
