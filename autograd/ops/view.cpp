// autograd/ops/view.cpp: views: new shape/strides/offset over the same storage, no data copied.
//
// The backward of a view maps the gradient back through the inverse view: reshape back, transpose back,
// the inverse permutation, a zero tensor with the gradient copied into the narrowed window, and for expand
// a sum over the broadcast dims.
#include <numeric>

#include "autograd/ops/common.h"

namespace sanf {

using namespace ops_detail;

namespace {
std::vector<Tensor> one(Tensor g) { return {std::move(g)}; }
}  // namespace

Tensor reshape(const Tensor& x, const Shape& shape_in) {
  Shape shape = shape_in;
  int64_t known = 1;
  int infer = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      SANF_CHECK(infer < 0, "[reshape] more than one -1 in ", shape_str(shape_in));
      infer = int(i);
    } else {
      SANF_CHECK(shape[i] >= 0, "[reshape] negative size in ", shape_str(shape_in));
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    SANF_CHECK(known > 0 && x.numel() % known == 0, "[reshape] cannot reshape ", shape_str(x.shape()), " into ",
               shape_str(shape_in));
    shape[size_t(infer)] = x.numel() / known;
  }
  SANF_CHECK(numel(shape) == x.numel(), "[reshape] cannot reshape ", shape_str(x.shape()), " (", x.numel(),
             " elements) into ", shape_str(shape_in));
  // A non-contiguous input is copied first (the copy is recorded by contiguous(), so gradients flow).
  Tensor src = contiguous(x);
  Tensor out = src.as_strided(shape, contiguous_strides(shape), src.offset());
  return record("reshape", out, {src}, [in = x.shape()](const Tensor& g, const std::vector<bool>&) {
    return one(reshape(g, in));
  });
}

Tensor flatten(const Tensor& x, int start_dim, int end_dim) {
  if (x.dim() == 0) return reshape(x, {1});
  int s = normalize_dim(start_dim, x.dim(), "flatten"), e = normalize_dim(end_dim, x.dim(), "flatten");
  SANF_CHECK(s <= e, "[flatten] start_dim ", start_dim, " after end_dim ", end_dim);
  Shape shape(x.shape().begin(), x.shape().begin() + s);
  int64_t n = 1;
  for (int i = s; i <= e; ++i) n *= x.shape()[size_t(i)];
  shape.push_back(n);
  shape.insert(shape.end(), x.shape().begin() + e + 1, x.shape().end());
  return reshape(x, shape);
}

Tensor permute(const Tensor& x, const std::vector<int>& dims) {
  SANF_CHECK(int(dims.size()) == x.dim(), "[permute] ", dims.size(), " dims given for a tensor of shape ",
             shape_str(x.shape()));
  Shape shape(dims.size()), strides(dims.size());
  std::vector<int> inverse(dims.size(), -1);
  for (size_t i = 0; i < dims.size(); ++i) {
    int d = normalize_dim(dims[i], x.dim(), "permute");
    SANF_CHECK(inverse[size_t(d)] < 0, "[permute] dim ", dims[i], " repeated");
    inverse[size_t(d)] = int(i);
    shape[i] = x.shape()[size_t(d)];
    strides[i] = x.strides()[size_t(d)];
  }
  Tensor out = x.as_strided(shape, strides, x.offset());
  return record("permute", out, {x}, [inverse](const Tensor& g, const std::vector<bool>&) {
    return one(permute(g, inverse));
  });
}

Tensor transpose(const Tensor& x, int d0, int d1) {
  std::vector<int> dims(static_cast<size_t>(x.dim()));
  std::iota(dims.begin(), dims.end(), 0);
  std::swap(dims[size_t(normalize_dim(d0, x.dim(), "transpose"))], dims[size_t(normalize_dim(d1, x.dim(), "transpose"))]);
  return permute(x, dims);
}

Tensor narrow(const Tensor& x, int dim, int64_t start, int64_t length) {
  int d = normalize_dim(dim, x.dim(), "narrow");
  SANF_CHECK(start >= 0 && length >= 0 && start + length <= x.shape()[size_t(d)], "[narrow] window [", start, ", ",
             start + length, ") outside dim ", dim, " of ", shape_str(x.shape()));
  Shape shape = x.shape();
  shape[size_t(d)] = length;
  Tensor out = x.as_strided(shape, x.strides(), x.offset() + start * x.strides()[size_t(d)]);
  return record("narrow", out, {x}, [in = x.shape(), d, start, length](const Tensor& g, const std::vector<bool>&) {
    // Adjoint: zeros with the gradient in the window.
    Tensor dx = zeros(in, g.dtype(), g.device());
    Shape win = in;
    win[size_t(d)] = length;
    kernels::copy(dx.as_strided(win, dx.strides(), start * dx.strides()[size_t(d)]), g);
    return one(dx);
  });
}

Tensor select(const Tensor& x, int dim, int64_t index) {
  int d = normalize_dim(dim, x.dim(), "select");
  int64_t n = x.shape()[size_t(d)];
  SANF_CHECK(index >= -n && index < n, "[select] index ", index, " out of range for dim ", dim, " of ",
             shape_str(x.shape()));
  return squeeze(narrow(x, d, index < 0 ? index + n : index, 1), d);
}

Tensor expand(const Tensor& x, const Shape& shape) {
  SANF_CHECK(shape.size() >= x.shape().size(), "[expand] cannot expand ", shape_str(x.shape()), " to fewer dims ",
             shape_str(shape));
  Shape target = shape;
  const size_t lead = shape.size() - x.shape().size();
  for (size_t i = 0; i < x.shape().size(); ++i) {
    int64_t have = x.shape()[i], want = shape[lead + i];
    if (want == -1) target[lead + i] = want = have;
    SANF_CHECK(have == want || have == 1, "[expand] cannot expand ", shape_str(x.shape()), " to ", shape_str(shape));
  }
  if (target == x.shape()) return x;
  Tensor out = broadcast_view(x, target);
  return record("expand", out, {x}, [in = x.shape()](const Tensor& g, const std::vector<bool>&) {
    return one(sum_to(g, in));
  });
}

Tensor unsqueeze(const Tensor& x, int dim) {
  int d = normalize_dim(dim, x.dim() + 1, "unsqueeze");
  Shape shape = x.shape();
  shape.insert(shape.begin() + d, 1);
  return reshape(x, shape);
}

Tensor squeeze(const Tensor& x, int dim) {
  int d = normalize_dim(dim, x.dim(), "squeeze");
  SANF_CHECK(x.shape()[size_t(d)] == 1, "[squeeze] dim ", dim, " of ", shape_str(x.shape()), " is not 1");
  Shape shape = x.shape();
  shape.erase(shape.begin() + d);
  // Drop the dim from the strides too, so squeezing a non-contiguous view stays a view.
  Shape strides = x.strides();
  strides.erase(strides.begin() + d);
  Tensor out = x.as_strided(shape, strides, x.offset());
  return record("squeeze", out, {x}, [in = x.shape()](const Tensor& g, const std::vector<bool>&) {
    return one(reshape(g, in));
  });
}

}  // namespace sanf
