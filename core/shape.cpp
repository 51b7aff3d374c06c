// core/shape.cpp: shape arithmetic.
#include "core/shape.h"

#include "core/error.h"

namespace sanf {

Shape contiguous_strides(const Shape& shape) {
  Shape s(shape.size());
  int64_t acc = 1;
  for (int i = int(shape.size()) - 1; i >= 0; --i) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

int64_t numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_str(const Shape& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  return s + ")";
}

int normalize_dim(int dim, int ndim, const char* op) {
  int d = dim < 0 ? dim + ndim : dim;
  SANF_CHECK(d >= 0 && d < ndim, "[", op, "] dim ", dim, " out of range for a tensor of ", ndim, " dims");
  return d;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    SANF_CHECK(da == db || da == 1 || db == 1, "[", op, "] shapes do not broadcast: ", shape_str(a), " and ",
               shape_str(b));
    out[i] = da == 1 ? db : da;
  }
  return out;
}

Layout make_layout(const Shape& shape, const Shape& strides) {
  SANF_CHECK(shape.size() <= size_t(kMaxDims), "tensors have at most ", kMaxDims, " dims, got ", shape_str(shape));
  Layout l;
  l.ndim = int(shape.size());
  for (int i = 0; i < l.ndim; ++i) {
    l.shape[i] = shape[i];
    l.strides[i] = strides[i];
  }
  return l;
}

}  // namespace sanf
