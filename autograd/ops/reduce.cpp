// autograd/ops/reduce.cpp: sum, mean and max over dims; sum_to (the adjoint of broadcasting).
//
// The kernel reduces the middle axis of a contiguous (M, R, I) block. When the reduced dims are one
// adjacent run of a contiguous input, that is a free view; otherwise the input is permuted so the reduced
// dims come last (one copy) and I = 1.
//   sum:  dx = expand(g)             mean: dx = expand(g) / R
//   max:  dx = g at the first position of the maximum (as saved by the kernel), 0 elsewhere
#include <algorithm>

#include "autograd/ops/common.h"
#include "kernels/reduce.h"

namespace sanf {

using namespace ops_detail;
using kernels::ReduceOp;

namespace {
struct ReducePlan {
  std::vector<bool> reduced;  // per input dim
  Tensor block;               // contiguous, viewed as (M, R, I)
  std::vector<int> perm;      // permutation applied to the input (empty: none)
  int64_t M = 1, R = 1, I = 1;
  Shape keep_shape;           // output shape with keepdim
  Shape out_shape;            // output shape as requested
};

ReducePlan plan_reduce(const char* op, const Tensor& x, const std::vector<int>& dims, bool keepdim) {
  ReducePlan p;
  const int nd = x.dim();
  p.reduced.assign(size_t(nd), dims.empty());
  for (int d : dims) {
    int k = normalize_dim(d, nd, op);
    SANF_CHECK(!p.reduced[size_t(k)], "[", op, "] dim ", d, " repeated");
    p.reduced[size_t(k)] = true;
  }
  int first = nd, last = -1;
  for (int d = 0; d < nd; ++d)
    if (p.reduced[size_t(d)]) first = std::min(first, d), last = std::max(last, d);
  bool adjacent = true;
  for (int d = first; d <= last; ++d) adjacent = adjacent && p.reduced[size_t(d)];
  for (int d = 0; d < nd; ++d) {
    p.keep_shape.push_back(p.reduced[size_t(d)] ? 1 : x.shape()[size_t(d)]);
    if (!p.reduced[size_t(d)] || keepdim) p.out_shape.push_back(p.keep_shape.back());
  }
  if (adjacent && x.is_contiguous()) {
    p.block = x;
    for (int d = 0; d < nd; ++d) {
      int64_t s = x.shape()[size_t(d)];
      if (d < first) p.M *= s;
      else if (d <= last) p.R *= s;
      else p.I *= s;
    }
    if (last < 0) p.M = x.numel();  // nothing reduced (0-dim input)
    return p;
  }
  for (int d = 0; d < nd; ++d)
    if (!p.reduced[size_t(d)]) p.perm.push_back(d), p.M *= x.shape()[size_t(d)];
  for (int d = 0; d < nd; ++d)
    if (p.reduced[size_t(d)]) p.perm.push_back(d), p.R *= x.shape()[size_t(d)];
  Shape ps, pst;
  for (int d : p.perm) ps.push_back(x.shape()[size_t(d)]), pst.push_back(x.strides()[size_t(d)]);
  p.block = dense(x.as_strided(ps, pst, x.offset()));
  return p;
}

Tensor reduce_forward(ReduceOp op, const ReducePlan& p, const Tensor& x, Tensor* argmax) {
  Tensor out = Tensor::empty(p.out_shape, x.dtype(), x.device());
  if (argmax) *argmax = Tensor::empty({p.M * p.I}, DType::I64, x.device());
  if (out.numel() == 0) return out;
  SANF_CHECK(p.R > 0 || op == ReduceOp::Sum, "[max] reduction over an empty dim of ", shape_str(x.shape()));
  kernels::reduce(op, p.block, out, argmax ? *argmax : Tensor(), p.M, p.R, p.I);
  return out;
}
}  // namespace

Tensor sum(const Tensor& x, const std::vector<int>& dims, bool keepdim) {
  check_float("sum", x);
  ReducePlan p = plan_reduce("sum", x, dims, keepdim);
  Tensor out = reduce_forward(ReduceOp::Sum, p, x, nullptr);
  return record("sum", out, {x}, [in = x.shape(), keep = p.keep_shape](const Tensor& g, const std::vector<bool>&) {
    return std::vector<Tensor>{expand(reshape(g, keep), in)};
  });
}

Tensor mean(const Tensor& x, const std::vector<int>& dims, bool keepdim) {
  check_float("mean", x);
  ReducePlan p = plan_reduce("mean", x, dims, keepdim);
  SANF_CHECK(p.R > 0, "[mean] reduction over an empty dim of ", shape_str(x.shape()));
  return mul(sum(x, dims, keepdim), 1.0 / double(p.R));
}

Tensor max(const Tensor& x, const std::vector<int>& dims, bool keepdim) {
  check_float("max", x);
  ReducePlan p = plan_reduce("max", x, dims, keepdim);
  Tensor argmax;
  Tensor out = reduce_forward(ReduceOp::Max, p, x, &argmax);
  // The closure keeps the block's shape, not the block (which may be a large permuted copy).
  return record("max", out, {x}, [block = p.block.shape(), perm = p.perm, M = p.M, R = p.R, I = p.I, argmax](
                                     const Tensor& g, const std::vector<bool>&) {
    // Scatter into the (M, R, I) block layout, then undo the permutation (if any) as a view.
    Tensor dblock = Tensor::empty(block, g.dtype(), g.device());
    kernels::reduce_max_backward(dense(g), argmax, dblock, M, R, I);
    if (perm.empty()) return std::vector<Tensor>{dblock};
    std::vector<int> inverse(perm.size());
    for (size_t i = 0; i < perm.size(); ++i) inverse[size_t(perm[i])] = int(i);
    return std::vector<Tensor>{permute(dblock, inverse)};
  });
}

Tensor sum_to(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  const int lead = g.dim() - int(shape.size());
  SANF_CHECK(lead >= 0, "[sum_to] cannot sum ", shape_str(g.shape()), " down to ", shape_str(shape));
  std::vector<int> dims;
  for (int d = 0; d < g.dim(); ++d) {
    if (d < lead) {
      dims.push_back(d);
    } else if (shape[size_t(d - lead)] != g.shape()[size_t(d)]) {
      SANF_CHECK(shape[size_t(d - lead)] == 1, "[sum_to] cannot sum ", shape_str(g.shape()), " down to ",
                 shape_str(shape));
      dims.push_back(d);
    }
  }
  if (dims.empty()) return reshape(g, shape);
  return reshape(sum(g, dims, true), shape);
}

}  // namespace sanf
