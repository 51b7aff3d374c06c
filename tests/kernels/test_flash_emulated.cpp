// tests/kernels/test_flash_emulated.cpp: the fused bf16 attention's CUDA kernel (kernels/fast/flash_attention.cuh)
// run on the CPU, every lane a host thread, by tests/testing/warp_emulator.h; its result held, as the CUDA
// test holds the real kernel's, to the composite bf16 attention (autograd/fast.h) and to an f64 attention of
// the same bf16 operands. This checks the kernel's indexing (fragments, tiles, masking past N, the online
// softmax, the stores) on any machine; the kernel's speed and the hardware's reading of it need a GPU.
#include "tests/testing/warp_emulator.h"  // first: it defines what the kernel header expects
#include "kernels/fast/flash_attention.cuh"

#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "autograd/fast.h"
#include "autograd/ops.h"
#include "tests/testing/gradcheck.h"

using namespace sanf;

namespace {

template <int HD, typename O>
void run_kernel(const Tensor& qkv, Tensor& out, int64_t B, int64_t N, int64_t H, float scale) {
  using namespace kernels::flash_detail;
  const int64_t tiles = (N + kRows - 1) / kRows;
  const float* x = qkv.data<float>();
  O* o = out.data<O>();
  warp_emulation::launch(unsigned(tiles * B * H), kWarps * 32, [&] {
    flash_attention_bf16_kernel<HD, O>(x, o, int(N), int(H), int(tiles), scale);
  });
}

template <typename O>
void run_hd(const Tensor& qkv, Tensor& out, int64_t B, int64_t N, int64_t H, int64_t hd, float scale) {
  switch (hd) {
    case 32: return run_kernel<32, O>(qkv, out, B, N, H, scale);
    case 64: return run_kernel<64, O>(qkv, out, B, N, H, scale);
    case 128: return run_kernel<128, O>(qkv, out, B, N, H, scale);
  }
  FAIL("head dim ", hd);
}

}  // namespace

TEST_CASE("flash attention kernel, emulated lane by lane: matches the composite and an f64 attention") {
  NoGradGuard no_grad;
  struct Case {
    int64_t B, N, H, hd;
  };
  // N = 197: a ViT at 224 (four query and key tiles, the last of 5 rows); a partial tile with hd = 32; one
  // token; 130 keys with the widest heads (three key tiles); two batches of one exact tile; and 2 batches x
  // 3 heads, so that a mix-up of batch and head in the block index shows.
  for (const Case c : {Case{1, 197, 1, 64}, Case{1, 17, 2, 32}, Case{1, 1, 1, 64}, Case{1, 130, 1, 128},
                       Case{2, 64, 1, 64}, Case{2, 40, 3, 32}}) {
    INFO("B ", c.B, " N ", c.N, " H ", c.H, " hd ", c.hd);
    Generator gen(90 + uint64_t(c.N));
    const Tensor qkv = mul(randn({c.B, c.N, 3 * c.H * c.hd}, DType::F32, Device::CPU, &gen), 2.0);
    const double scale = 1.0 / std::sqrt(double(c.hd));
    const auto [q, k, v] = split_qkv_bf16(qkv, c.H, scale);
    const Tensor p = softmax(matmul(to(q, DType::F64), transpose(to(k, DType::F64), -2, -1)), -1);
    const Tensor exact = reshape(transpose(matmul(p, to(v, DType::F64)), 1, 2), {c.B, c.N, c.H * c.hd});
    for (DType dt : {DType::F32, DType::BF16}) {
      // Filled with NaN first: an element the kernel fails to write shows.
      Tensor out = to(full({c.B, c.N, c.H * c.hd}, NAN), dt);
      warp_emulation::g_misaligned = 0;
      if (dt == DType::F32)
        run_hd<float>(qkv, out, c.B, c.N, c.H, c.hd, float(scale));
      else
        run_hd<bf16>(qkv, out, c.B, c.N, c.H, c.hd, float(scale));
      CHECK(warp_emulation::g_misaligned == 0);
      const Tensor f = to(out, DType::F64), m = to(attention_bf16(qkv, c.H, scale, dt), DType::F64);
      const double e_fused = testing::rel_l2(f, exact), e_comp = testing::rel_l2(m, exact);
      MESSAGE(std::string(dtype_name(dt)), " out: relative L2 to the f64 attention: kernel ", e_fused, ", composite ",
              e_comp);
      // The same bounds as the GPU test (tests/cuda/test_cuda_bf16.cpp).
      CHECK(std::isfinite(e_fused));
      CHECK(e_fused <= 1.3 * e_comp + 1e-4);
      CHECK(testing::rel_l2(f, m) < 4e-3);
    }
  }
}
