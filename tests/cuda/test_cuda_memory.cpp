// tests/cuda/test_cuda_memory.cpp: the CUDA core: availability, the caching allocator, host<->device
// transfers, factories and fills on the device, and the error for ops that mix devices.
#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "kernels/copy.h"
#include "tests/cuda/parity.h"

using namespace sanf;
using namespace sanf::cuda_testing;

TEST_CASE("cuda: availability is reported") {
  // Never throws, with or without a device; the answer is stable.
  const bool a = cuda_available();
  CHECK(cuda_available() == a);
  if (!a) MESSAGE("SKIPPED: no CUDA device (or a build without CUDA): every CUDA test of this run is skipped");
}

TEST_CASE("cuda: device selection: the count, the name, a bad index, and no switch once memory is in use") {
  if (!cuda_available()) {
    CHECK(cuda_device_count() == 0);
    CHECK_THROWS_WITH_AS(cuda_select_device(0), doctest::Contains("no CUDA support"), Error);
  }
  SANF_SKIP_WITHOUT_CUDA();
  const int count = cuda_device_count();
  REQUIRE(count >= 1);
  CHECK(!cuda_device_name().empty());
  CHECK_NOTHROW(cuda_select_device(0));  // the current device: always allowed
  const std::string too_far = cat("this machine has ", count, " CUDA device");
  CHECK_THROWS_WITH_AS(cuda_select_device(count), doctest::Contains(too_far.c_str()), Error);
  CHECK_THROWS_AS(cuda_select_device(-1), Error);
  Tensor t = Tensor::empty({4}, DType::F32, Device::CUDA);  // the device is in use from here on
  if (count >= 2)
    CHECK_THROWS_WITH_AS(cuda_select_device(1), doctest::Contains("already in use"), Error);
  else
    MESSAGE("one CUDA device: switching devices after use is not exercised");
}

TEST_CASE("cuda: the caching allocator reuses freed blocks") {
  SANF_SKIP_WITHOUT_CUDA();
  CHECK(cuda_alloc(0) == nullptr);
  cuda_free(nullptr);  // a no-op

  // The same size, freed and allocated again, comes back as the same block (no cudaMalloc in steady state).
  void* first = cuda_alloc(1000);
  REQUIRE(first != nullptr);
  cuda_free(first);
  for (int i = 0; i < 100; ++i) {
    void* p = cuda_alloc(1000);
    CHECK(p == first);
    cuda_free(p);
  }
  // A size in the same class (both round up to 1024 bytes) reuses it too.
  void* p = cuda_alloc(900);
  CHECK(p == first);
  // Two live blocks are distinct.
  void* q = cuda_alloc(1000);
  CHECK(q != p);
  cuda_free(q);
  cuda_free(p);

  // Large sizes (above 1 MiB, classes a quarter of a power of two apart) as well: 3 MiB + 17 bytes and
  // 3 MiB + 1000 bytes both round up to 3.5 MiB.
  void* big = cuda_alloc(3 * 1024 * 1024 + 17);
  cuda_free(big);
  void* big2 = cuda_alloc(3 * 1024 * 1024 + 1000);
  CHECK(big2 == big);
  cuda_free(big2);

  // Through tensors: a dropped tensor's storage is handed to the next tensor of that size.
  const void* data = nullptr;
  {
    Tensor t = Tensor::empty({257, 3}, DType::F32, Device::CUDA);
    data = t.data_ptr();
  }
  Tensor u = Tensor::empty({257, 3}, DType::F32, Device::CUDA);
  CHECK(u.data_ptr() == data);

  // Freed blocks are reused, and not corrupted: a round trip through a recycled block keeps the values.
  for (int round = 0; round < 3; ++round) {
    std::vector<double> v(5000);
    for (size_t i = 0; i < v.size(); ++i) v[i] = double(i) * 0.5 - double(round);
    Tensor h = Tensor::from_vector(v, {5000}, DType::F64);
    CHECK(h.copy_to_device(Device::CUDA).to_vector() == v);
  }
}

TEST_CASE("cuda: host-device-host round trips of every dtype") {
  SANF_SKIP_WITHOUT_CUDA();
  std::vector<double> v = {0, 1, 2, 3, 100, 255, 7, 42};
  for (DType dt : {DType::F32, DType::F64, DType::BF16, DType::F16, DType::I64, DType::U8}) {
    INFO("dtype ", dtype_name(dt));
    Tensor h = Tensor::from_vector(v, {2, 4}, dt);
    Tensor d = h.copy_to_device(Device::CUDA);
    CHECK(d.device() == Device::CUDA);
    Tensor back = d.copy_to_device(Device::CPU);
    CHECK(std::memcmp(back.data_ptr(), h.data_ptr(), size_t(h.numel() * dtype_size(dt))) == 0);
    // Device to device.
    Tensor d2 = d.copy_to_device(Device::CUDA);
    CHECK(d2.data_ptr() != d.data_ptr());
    CHECK(d2.to_vector() == v);
    // Reading a view of a device tensor.
    CHECK(narrow(d, 1, 1, 2).to_vector() == std::vector<double>{1, 2, 255, 7});
  }
  cuda_synchronize();
}

TEST_CASE("cuda: large uploads (pinned staging, asynchronous) arrive intact, in order with the kernels") {
  SANF_SKIP_WITHOUT_CUDA();
  // 20 MiB: three chunks over both 8 MiB staging buffers; five uploads in a row reuse each buffer, and each
  // source is overwritten right after its upload returns (the call must have copied it by then).
  const int64_t n = (int64_t(20) << 20) / 4;
  std::vector<Tensor> dev;
  Tensor src = Tensor::empty({n}, DType::F32);
  float* p = src.data<float>();
  for (int u = 0; u < 5; ++u) {
    for (int64_t i = 0; i < n; ++i) p[i] = float(u * 1000003 + i % 65521);
    dev.push_back(src.copy_to_device(Device::CUDA));
    for (int64_t i = 0; i < n; ++i) p[i] = -1.0f;  // the upload has its own copy by now
  }
  for (int u = 0; u < 5; ++u) {
    INFO("upload ", u);
    // A kernel queued after the upload sees its data: x + 0 on the device, then read back.
    const std::vector<double> back = add(dev[size_t(u)], 0.0).to_vector();
    int64_t bad = 0;
    for (int64_t i = 0; i < n; ++i) bad += back[size_t(i)] != double(float(u * 1000003 + i % 65521));
    CHECK(bad == 0);
  }
  // Just under the staging threshold and an odd size above it take the plain path and the staged one.
  for (int64_t m : {int64_t(16383), int64_t(16385), int64_t(2100001)}) {
    Tensor h = to(rin({m}, uint64_t(m)), DType::F32);  // f32: 65532 B, 65540 B, 8.4 MB
    CHECK(h.copy_to_device(Device::CUDA).to_vector() == h.to_vector());
  }
  cuda_synchronize();
}

TEST_CASE("cuda parity: factories and fill") {
  SANF_SKIP_WITHOUT_CUDA();
  for (DType dt : {DType::F32, DType::F64, DType::BF16, DType::F16, DType::I64, DType::U8}) {
    INFO("dtype ", dtype_name(dt));
    expect_equal("zeros", zeros({3, 70}, dt, Device::CUDA), zeros({3, 70}, dt));
    expect_equal("ones", ones({3, 70}, dt, Device::CUDA), ones({3, 70}, dt));
    expect_equal("full", full({1000}, 7.0, dt, Device::CUDA), full({1000}, 7.0, dt));
  }
  expect_equal("full -1.3 bf16", full({5}, -1.3, DType::BF16, Device::CUDA), full({5}, -1.3, DType::BF16));
  expect_equal("full -1.3 f16", full({5}, -1.3, DType::F16, Device::CUDA), full({5}, -1.3, DType::F16));
  expect_equal("arange", arange(300, DType::I64, Device::CUDA), arange(300));
  expect_equal("arange f32", arange(17, DType::F32, Device::CUDA), arange(17, DType::F32));
  // trunc_normal (the initialisers' draw) is drawn on the host: one seed, the same values on both devices.
  // (randn and rand draw on the device with cuRAND: tests/cuda/test_cuda_random.cpp.)
  Generator g1(5), g2(5);
  expect_equal("trunc_normal", trunc_normal({40}, 0.02, -0.04, 0.04, DType::F32, Device::CUDA, &g1),
               trunc_normal({40}, 0.02, -0.04, 0.04, DType::F32, Device::CPU, &g2));
  expect_equal("zeros_like", zeros_like(ones({2, 2}, DType::F32, Device::CUDA)), zeros({2, 2}));
  CHECK(zeros_like(ones({2, 2}, DType::F32, Device::CUDA)).device() == Device::CUDA);
  // Empty tensors: nothing is launched, nothing breaks.
  CHECK(zeros({0, 5}, DType::F32, Device::CUDA).numel() == 0);
}

namespace {
// The message of the sanf::Error that f throws ("" if it does not throw).
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("cuda: ops mixing a CPU and a CUDA tensor throw 'devices differ'") {
  SANF_SKIP_WITHOUT_CUDA();
  Tensor a = ones({2, 3});
  Tensor b = ones({2, 3}, DType::F32, Device::CUDA);
  for (const std::string& msg : {error_of([&] { add(a, b); }), error_of([&] { mul(b, a); }),
                                 error_of([&] { div(a, b); }), error_of([&] { matmul(a, transpose(b, 0, 1)); }),
                                 error_of([&] { layer_norm(b, ones({3}), zeros({3}), 1e-5); }), error_of([&] {
                                   linear(b, ones({4, 3}), Tensor());
                                 })}) {
    INFO("message: ", msg);
    CHECK(msg.find("devices differ") != std::string::npos);
  }
  // The kernel-level copy checks too.
  std::string msg = error_of([&] { kernels::copy(a, b); });
  CHECK(msg.find("devices differ") != std::string::npos);
  // Moving explicitly works, and is differentiable.
  Tensor x = ones({2, 3}).set_requires_grad(true);
  Tensor y = to(x, Device::CUDA);
  CHECK(y.device() == Device::CUDA);
  backward(sum(mul(add(y, b), 3.0)));
  REQUIRE(x.grad().defined());
  CHECK(x.grad().device() == Device::CPU);
  CHECK(x.grad().to_vector() == std::vector<double>(6, 3.0));
}
