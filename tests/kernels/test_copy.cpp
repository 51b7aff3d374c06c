// tests/kernels/test_copy.cpp: the strided copy and fill kernels against element-by-element references.
#include <doctest/doctest.h>

#include "autograd/ops.h"
#include "kernels/copy.h"

using namespace sanf;

TEST_CASE("copy: strided to strided with dtype conversion matches the element reference") {
  std::vector<double> v(60);
  for (size_t i = 0; i < v.size(); ++i) v[i] = double(i) - 30.5;
  Tensor x = Tensor::from_vector(v, {3, 4, 5}, DType::F64);
  Tensor src = permute(x, {2, 0, 1});  // (5, 3, 4), non-contiguous
  for (DType dt : {DType::F32, DType::F64, DType::BF16, DType::F16}) {
    Tensor dst_full = zeros({5, 3, 8}, dt);
    Tensor dst = narrow(dst_full, 2, 2, 4);  // non-contiguous destination
    kernels::copy(dst, src);
    std::vector<double> got = dst.to_vector(), want = src.to_vector();
    for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == want[i]);  // all values exact in every dtype
    // Outside the window stays zero.
    CHECK(narrow(dst_full, 2, 0, 2).to_vector() == std::vector<double>(30, 0.0));
  }
  Tensor ints = Tensor::empty({3, 4, 5}, DType::I64);
  kernels::copy(ints, x);
  CHECK(ints.to_vector()[0] == -30.0);
}

TEST_CASE("fill: every dtype") {
  for (DType dt : {DType::F32, DType::F64, DType::BF16, DType::F16, DType::I64, DType::U8}) {
    Tensor t = Tensor::empty({7}, dt);
    kernels::fill(t, 3.0);
    CHECK(t.to_vector() == std::vector<double>(7, 3.0));
  }
}
