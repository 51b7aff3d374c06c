// kernels/cpu/random.cpp: random fills on the host, in element order, from the sanf Generator.
//
// Sequential by design: the Generator is one stream, and element i must get the i-th draw whatever the
// thread count, so a seed pins the values (tests pin the first ones). Each draw is a double, converted to
// the dtype by store_from_double (round to nearest even for bf16/f16), as Tensor::from_vector converts.
#include "kernels/random.h"

#include <algorithm>

namespace sanf::kernels::cpu {

namespace {
template <typename F>
void fill_with(DType dt, void* dst, int64_t n, F&& draw) {
  SANF_DISPATCH_ALL(dt, "random fill", [&] {
    auto* p = static_cast<scalar_t*>(dst);
    for (int64_t i = 0; i < n; ++i) store_from_double(p, i, draw());
  });
}
}  // namespace

void normal(DType dt, void* dst, int64_t n, Generator& g) {
  fill_with(dt, dst, n, [&] { return g.normal(); });
}

void uniform(DType dt, void* dst, int64_t n, Generator& g) {
  const double cap = uniform_cap(dt);
  fill_with(dt, dst, n, [&] { return std::min(g.uniform(), cap); });
}

}  // namespace sanf::kernels::cpu
