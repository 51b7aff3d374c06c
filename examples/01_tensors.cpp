// examples/01_tensors.cpp: what a Tensor is. Shapes, strides, views that share storage, contiguous copies,
// dtypes.
//
// A Tensor (core/tensor.h) is a view: a shape, strides (in elements), an offset, a dtype, over a
// reference-counted Storage of bytes. Element (i, j) of a 2-D view lives at
//   storage[offset + i * strides[0] + j * strides[1]]
// Views (reshape of a contiguous tensor, transpose, narrow, expand) make new metadata over the SAME storage
// and copy nothing; contiguous() and clone() copy into fresh row-major storage.
#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "autograd/ops.h"
#include "examples/check.h"

using namespace sanf;
using example::check;

namespace {
std::string str(const Shape& s) { return shape_str(s); }
bool same_storage(const Tensor& a, const Tensor& b) { return a.storage() == b.storage(); }
}  // namespace

int main() {
  // 1. A contiguous (3, 4) tensor holding 0..11. Row-major: moving one column is 1 element, one row is 4.
  Tensor x = reshape(to(arange(12), DType::F32), {3, 4});
  std::cout << "x = " << x << "\n";
  std::printf("x: shape %s, strides %s, offset %lld, contiguous %d\n", str(x.shape()).c_str(), str(x.strides()).c_str(),
              (long long)x.offset(), int(x.is_contiguous()));
  check(x.strides() == Shape{4, 1}, "a row-major (3, 4) tensor has strides (4, 1)");

  // 2. transpose swaps shape AND strides; nothing moves. The result is not contiguous: walking it in
  //    row-major order jumps through memory by 4 then back.
  Tensor t = transpose(x, 0, 1);
  std::printf("t = transpose(x): shape %s, strides %s, contiguous %d\n", str(t.shape()).c_str(),
              str(t.strides()).c_str(), int(t.is_contiguous()));
  check(t.strides() == Shape{1, 4} && !t.is_contiguous(), "transpose has strides (1, 4) and is not contiguous");
  check(same_storage(x, t), "x and its transpose share one storage");

  // The address formula, by hand: t[2][1] is x[1][2] = 6.
  const float* base = static_cast<const float*>(t.storage()->data());
  const float t21 = base[t.offset() + 2 * t.strides()[0] + 1 * t.strides()[1]];
  check(t21 == 6.0f, "t[2][1] read through offset + 2*stride0 + 1*stride1 is %g (= x[1][2])", t21);

  // 3. narrow (a slice) moves the offset: columns 1..2 of x start one element in.
  Tensor s = narrow(x, 1, 1, 2);
  std::printf("s = x[:, 1:3]: shape %s, strides %s, offset %lld\n", str(s.shape()).c_str(), str(s.strides()).c_str(),
              (long long)s.offset());
  check(s.offset() == 1 && same_storage(x, s), "a slice is a view: offset 1, same storage");

  // Writing through one view is visible through every other: they are the same bytes.
  x.data<float>()[1 * 4 + 2] = 100.0f;  // x[1][2]
  check(t.to_vector()[2 * 3 + 1] == 100.0 && s.to_vector()[1 * 2 + 1] == 100.0,
        "x[1][2] = 100 shows up as t[2][1] and as s[1][1]");

  // 4. reshape is a view when the strides allow it, a copy when they do not. A contiguous tensor can be
  //    viewed as any shape of the same size; a transposed one cannot be flattened without reordering.
  Tensor r = reshape(x, {2, 6});
  Tensor rt = reshape(t, {12});
  check(same_storage(x, r), "reshape of contiguous x to (2, 6) is a view");
  check(!same_storage(x, rt), "reshape of the transpose to (12) had to copy (new storage)");

  // 5. contiguous() copies a view into fresh row-major storage: same values, new strides.
  Tensor c = contiguous(t);
  std::printf("contiguous(t): strides %s, same storage as x: %d\n", str(c.strides()).c_str(), int(same_storage(c, x)));
  check(c.strides() == Shape{3, 1} && c.to_vector() == t.to_vector(), "contiguous(t) has t's values at strides (3, 1)");

  // 6. expand broadcasts with stride 0: four "rows" that are one row in memory.
  Tensor row = reshape(to(arange(3), DType::F32), {1, 3});
  Tensor e = expand(row, {4, 3});
  std::printf("expand((1, 3) -> (4, 3)): strides %s\n", str(e.strides()).c_str());
  check(e.strides()[0] == 0 && same_storage(e, row), "an expanded dim has stride 0 and copies nothing");

  // 7. dtypes. Compute happens in f32 or f64; bf16 keeps 8 bits of mantissa (storage, inference). to()
  //    converts (a copy; differentiable between floating dtypes).
  Tensor v = Tensor::from_vector({0.1, 1.0 / 3.0}, {2}, DType::F64);
  const std::vector<double> v32 = to(v, DType::F32).to_vector(), v16 = to(v, DType::BF16).to_vector();
  std::printf("1/3 as f64 %.17g, f32 %.17g, bf16 %.17g\n", v.to_vector()[1], v32[1], v16[1]);
  std::printf("element sizes: f64 %d, f32 %d, bf16 %d, i64 %d bytes\n", int(dtype_size(DType::F64)),
              int(dtype_size(DType::F32)), int(dtype_size(DType::BF16)), int(dtype_size(DType::I64)));
  check(v16[0] == 0.10009765625, "0.1 rounds to 0.10009765625 in bf16 (8 significant bits)");
  check(std::abs(v32[1] - 1.0 / 3.0) < 1e-7 && v32[1] != 1.0 / 3.0, "1/3 in f32 is close to, not equal to, f64's");
  return example::finish("01_tensors");
}
