// bench/bench_ops.cpp: per-op timings (forward, and forward+backward where it matters) at the shapes a
// ViT-B/L forward and a flow training step use, as JSON lines. bench/bench_ops_torch.py times the same
// ops in PyTorch; run both in one session to compare (tools/device/cuda_check.sh does, on a GPU).
//
//   bench_ops [cpu|cuda] [--quick]
// Each figure is the median over repetitions after warm-up; CUDA timings synchronise before reading the
// clock.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "autograd/fast.h"
#include "autograd/ops.h"
#include "bench/bench_common.h"
#include "kernels/fast/attention.h"

using namespace sanf;

namespace {
Device g_dev = Device::CPU;
bool g_quick = false;

// The timing method is bench/bench_common.h's.
void report(const std::string& op, const Shape& shape, const std::function<void()>& fn) {
  bench::report({g_dev, 3, g_quick ? 5 : 50, g_quick ? 0.2 : 1.0}, op, shape_str(shape), fn);
}
}  // namespace

int main(int argc, char** argv) {
  try {
    for (int i = 1; i < argc; ++i) {
      if (!std::strcmp(argv[i], "cuda")) g_dev = Device::CUDA;
      else if (!std::strcmp(argv[i], "cpu")) g_dev = Device::CPU;
      else if (!std::strcmp(argv[i], "--quick")) g_quick = true;
      else {
        std::fprintf(stderr, "usage: bench_ops [cpu|cuda] [--quick]\n");
        return 2;
      }
    }
    // ViT-L/16 at 224, batch 64 (GPU) or ViT-B/16 batch 8 (CPU): tokens T = B * 197.
    const bool gpu = g_dev == Device::CUDA;
    const int64_t B = gpu ? 64 : 8, N = 197, D = gpu ? 1024 : 768, H = gpu ? 16 : 12, Dh = D / H;
    const int64_t T = B * N;
    Generator gen(0);
    auto R = [&](const Shape& s) { return randn(s, DType::F32, g_dev, &gen); };

    Tensor x = R({T, D}), w = R({4 * D, D}), b = R({4 * D}), h = R({T, 4 * D});
    Tensor ln_w = R({D}), ln_b = R({D});
    Tensor scores = R({B, H, N, N});
    Tensor q = R({B, H, N, Dh}), k = R({B, H, N, Dh});

    report("linear", {T, D, 4 * D}, [&] { NoGradGuard ng; linear(x, w, b); });
    report("matmul_qk", {B, H, N, Dh}, [&] { NoGradGuard ng; matmul(q, transpose(k, -1, -2)); });
    report("gelu", {T, 4 * D}, [&] { NoGradGuard ng; gelu(h); });
    report("add_bias", {T, 4 * D}, [&] { NoGradGuard ng; add(h, b); });
    report("layer_norm", {T, D}, [&] { NoGradGuard ng; layer_norm(x, ln_w, ln_b, 1e-6); });
    report("softmax", {B, H, N, N}, [&] { NoGradGuard ng; softmax(scores, -1); });
    report("sum_lastdim", {T, 4 * D}, [&] { NoGradGuard ng; sum(h, {-1}); });
    report("transpose_copy", {B, N, H, Dh}, [&] {
      NoGradGuard ng;
      contiguous(permute(reshape(x, {B, N, H, Dh}), {0, 2, 1, 3}));
    });
    // Forward + backward.
    Tensor xg = detach(x).set_requires_grad(true);
    Tensor wg = detach(w).set_requires_grad(true);
    Tensor lwg = detach(ln_w).set_requires_grad(true), lbg = detach(ln_b).set_requires_grad(true);
    report("layer_norm_fwd_bwd", {T, D}, [&] {
      xg.zero_grad(), lwg.zero_grad(), lbg.zero_grad();
      backward(sum(layer_norm(xg, lwg, lbg, 1e-6)));
    });
    report("linear_gelu_fwd_bwd", {T, D, 4 * D}, [&] {
      xg.zero_grad(), wg.zero_grad();
      backward(sum(gelu(linear(xg, wg))));
    });
    // The bf16 attention from the qkv projection's output to the heads side by side (autograd/fast.h): the
    // composite (the default), and on CUDA the fused kernel (kernels/fast/attention.h), last, so that a
    // failing opt-in kernel cannot cost the figures above. PyTorch's peer is
    // F.scaled_dot_product_attention on bf16 q, k, v from a bf16 qkv, as timm runs under autocast.
    {
      const Tensor qkv = R({B, N, 3 * D});
      const double scale = 1.0 / std::sqrt(double(Dh));
      const kernels::ScopedSwitch fused(kernels::set_fused_attention, kernels::fused_attention_enabled, false);
      report("attention_bf16", {B, N, H, Dh}, [&] { NoGradGuard ng; attention_bf16(qkv, H, scale, DType::BF16); });
      kernels::set_fused_attention(true);
      if (kernels::fused_attention_used(g_dev, N, Dh))
        report("attention_bf16_fused", {B, N, H, Dh}, [&] {
          NoGradGuard ng;
          attention_bf16(qkv, H, scale, DType::BF16);
        });
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_ops: %s\n", e.what());
    return 1;
  }
}
