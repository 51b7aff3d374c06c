// autograd/ops/index.cpp: index_select, gathering slices of x along one dim.
//
// x: (..., S, ...) with S at `dim`; index: (n) int64 -> out: (..., n, ...), out[.., j, ..] = x[.., index[j], ..].
// Viewed as contiguous (M, S, I) blocks (M = product of the dims before `dim`, I = after), the forward is
// the gather kernel and the backward is its adjoint, a scatter-add into zeros:
//   dx[m, index[j], i] += dy[m, j, i]
// so an index that appears twice receives the sum of both gradients.
//
// The index may live on another device than x (e.g. built on the host for a CUDA x); it is moved to x's
// device once, and every entry is checked on the host before any kernel runs, unless the caller says it
// has checked them already (check = false; the index must then be on x's device).
#include "kernels/index.h"
#include "autograd/ops/common.h"

namespace sanf {

using namespace ops_detail;

Tensor index_select(const Tensor& x, int dim, const Tensor& index, bool check) {
  check_float("index_select", x);
  SANF_CHECK(index.defined(), "[index_select] undefined index");
  SANF_CHECK(index.dtype() == DType::I64 && index.dim() == 1, "[index_select] index must be a 1-D i64 tensor, got ",
             index.info());
  SANF_CHECK(x.dim() > 0, "[index_select] needs at least one dim, got a scalar x");
  const int d = normalize_dim(dim, x.dim(), "index_select");
  const int64_t S = x.shape()[size_t(d)], n = index.numel();

  Tensor idx;
  if (check) {  // every entry, on the host
    Tensor host = index.device() == Device::CPU ? dense(index) : dense(index).copy_to_device(Device::CPU);
    const int64_t* iv = host.data<int64_t>();
    for (int64_t j = 0; j < n; ++j)
      SANF_CHECK(iv[j] >= 0 && iv[j] < S, "[index_select] index ", iv[j], " (entry ", j, ") out of range for dim ",
                 dim, " of size ", S, " in x ", shape_str(x.shape()));
    idx = x.device() == Device::CPU ? host : index.device() == x.device() ? dense(index) : host.copy_to_device(x.device());
  } else {
    SANF_CHECK(index.device() == x.device(), "[index_select] an unchecked index must be on x's device (",
               device_name(x.device()), "), got ", index.info());
    idx = dense(index);
  }

  int64_t M = 1, I = 1;
  for (int k = 0; k < d; ++k) M *= x.shape()[size_t(k)];
  for (int k = d + 1; k < x.dim(); ++k) I *= x.shape()[size_t(k)];
  Shape out_shape = x.shape();
  out_shape[size_t(d)] = n;
  Tensor out = Tensor::empty(out_shape, x.dtype(), x.device());
  if (out.numel() > 0) kernels::index_select(dense(x), idx, out, M, S, I);
  return record("index_select", out, {x}, [in = x.shape(), idx, M, S, I](const Tensor& g, const std::vector<bool>&) {
    Tensor dx = zeros(in, g.dtype(), g.device());
    if (g.numel() > 0) kernels::index_add(dense(g), idx, dx, M, S, I);
    return std::vector<Tensor>{dx};
  });
}

}  // namespace sanf
