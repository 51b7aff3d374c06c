// autograd/ops/join.cpp: concat, and its inverses split and chunk.
//
// concat(xs, dim): the output is allocated once and each input is copied into its window along `dim`
// (kernels::copy into a narrow view of the output, so non-contiguous inputs need no extra copy). The
// backward of a copy into a window is reading that window back: dx_i = narrow(dy, dim, offset_i, size_i),
// a view, no copy.
// split / chunk: narrow views of x, each with narrow's own backward (zeros with the gradient in the window;
// the engine adds the pieces' contributions).
#include <algorithm>

#include "autograd/ops/common.h"

namespace sanf {

using namespace ops_detail;

Tensor concat(const std::vector<Tensor>& xs, int dim) {
  SANF_CHECK(!xs.empty(), "[concat] needs at least one tensor");
  const Tensor& x0 = xs[0];
  check_float("concat", x0);
  SANF_CHECK(x0.dim() > 0, "[concat] cannot concatenate scalars (input 0 has shape ", shape_str(x0.shape()), ")");
  const int d = normalize_dim(dim, x0.dim(), "concat");
  Shape out_shape = x0.shape();
  out_shape[size_t(d)] = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const Tensor& x = xs[i];
    SANF_CHECK(x.defined(), "[concat] input ", i, " is undefined");
    SANF_CHECK(x.dtype() == x0.dtype() && x.device() == x0.device(), "[concat] input ", i, " is ", x.info(),
               " but input 0 is ", x0.info());
    bool same = x.dim() == x0.dim();
    for (int k = 0; same && k < x.dim(); ++k) same = k == d || x.shape()[size_t(k)] == x0.shape()[size_t(k)];
    SANF_CHECK(same, "[concat] input ", i, " has shape ", shape_str(x.shape()), " but input 0 has ",
               shape_str(x0.shape()), ": shapes must match except on dim ", dim);
    out_shape[size_t(d)] += x.shape()[size_t(d)];
  }

  Tensor out = Tensor::empty(out_shape, x0.dtype(), x0.device());
  std::vector<int64_t> sizes;
  int64_t start = 0;
  for (const Tensor& x : xs) {
    const int64_t n = x.shape()[size_t(d)];
    kernels::copy(out.as_strided(x.shape(), out.strides(), start * out.strides()[size_t(d)]), x);
    sizes.push_back(n);
    start += n;
  }
  return record("concat", out, xs, [d, sizes](const Tensor& g, const std::vector<bool>& needs) {
    std::vector<Tensor> dxs(sizes.size());
    int64_t offset = 0;
    for (size_t i = 0; i < sizes.size(); ++i) {
      if (needs[i]) dxs[i] = narrow(g, d, offset, sizes[i]);
      offset += sizes[i];
    }
    return dxs;
  });
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int dim) {
  SANF_CHECK(x.defined(), "[split] undefined tensor argument");
  SANF_CHECK(x.dim() > 0, "[split] cannot split a scalar");
  const int d = normalize_dim(dim, x.dim(), "split");
  int64_t total = 0;
  for (int64_t s : sizes) {
    SANF_CHECK(s >= 0, "[split] negative size ", s, " in ", shape_str(sizes));
    total += s;
  }
  SANF_CHECK(total == x.shape()[size_t(d)], "[split] sizes ", shape_str(sizes), " sum to ", total, " but dim ", dim,
             " of ", shape_str(x.shape()), " has size ", x.shape()[size_t(d)]);
  std::vector<Tensor> pieces;
  int64_t start = 0;
  for (int64_t s : sizes) {
    pieces.push_back(narrow(x, d, start, s));
    start += s;
  }
  return pieces;
}

// As PyTorch: pieces of ceil(S / chunks) along dim, the last one smaller; so there may be fewer than
// `chunks` pieces (S = 5, chunks = 4 gives 2, 2, 1). An empty dim gives one empty piece.
std::vector<Tensor> chunk(const Tensor& x, int chunks, int dim) {
  SANF_CHECK(x.defined(), "[chunk] undefined tensor argument");
  SANF_CHECK(chunks > 0, "[chunk] chunks must be positive, got ", chunks);
  SANF_CHECK(x.dim() > 0, "[chunk] cannot chunk a scalar");
  const int d = normalize_dim(dim, x.dim(), "chunk");
  const int64_t S = x.shape()[size_t(d)];
  const int64_t step = (S + chunks - 1) / chunks;
  std::vector<int64_t> sizes;
  for (int64_t start = 0; start < S; start += step) sizes.push_back(std::min(step, S - start));
  if (sizes.empty()) sizes.push_back(0);
  return split(x, sizes, d);
}

}  // namespace sanf
