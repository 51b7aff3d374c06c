// bench/bench_flow.cpp: one training step of the SANF flow (forward, backward, Adam) and one scoring pass
// (forward only, no grad) at the paper's ViT-B shapes, as JSON lines. bench/bench_flow_torch.py times the
// same step in PyTorch; run both in one session to compare.
//
//   bench_flow [cpu|cuda] [--quick]
// Shapes: batch 32, D 768, N 196 patch tokens, H 768, K 4, 4 heads, Adam with SPEC §3's settings. Each
// figure is the median over repetitions after warm-up; CUDA timings synchronise before reading the clock.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "bench/bench_common.h"
#include "flows/flow.h"

using namespace sanf;

namespace {
Device g_dev = Device::CPU;
bool g_quick = false;

// The timing method is bench/bench_common.h's.
void report(const std::string& op, const std::string& shape, const std::function<void()>& fn) {
  bench::report({g_dev, g_quick ? 1 : 2, g_quick ? 3 : 20, g_quick ? 1.0 : 10.0}, op, shape, fn);
}
}  // namespace

int main(int argc, char** argv) {
  try {
    for (int i = 1; i < argc; ++i) {
      if (!std::strcmp(argv[i], "cuda"))
        g_dev = Device::CUDA;
      else if (!std::strcmp(argv[i], "cpu"))
        g_dev = Device::CPU;
      else if (!std::strcmp(argv[i], "--quick"))
        g_quick = true;
      else {
        std::fprintf(stderr, "usage: bench_flow [cpu|cuda] [--quick]\n");
        return 2;
      }
    }
    const int64_t B = 32, D = 768, N = 196;
    flows::FlowConfig cfg;
    cfg.dim = D, cfg.tokens = N, cfg.layers = 4, cfg.hidden = 768, cfg.heads = 4, cfg.seed = 0;
    flows::Flow flow(cfg, DType::F32, g_dev);
    nn::Adam opt(flow.named_parameters(), {.lr = 5e-5, .beta1 = 0.8, .beta2 = 0.8, .eps = 1e-4, .weight_decay = 1e-5});
    Generator gen(1);
    Tensor y = randn({B, D}, DType::F32, g_dev, &gen), P = randn({B, N, D}, DType::F32, g_dev, &gen);
    const std::string shape = "B 32, D 768, N 196, H 768, K 4";

    report("flow_train_step", shape, [&] {
      opt.zero_grad();
      backward(flows::nll_loss(flow.forward(y, P)));
      opt.step();
    });
    report("flow_score", shape, [&] {
      NoGradGuard ng;
      flows::nll(flow.forward(y, P));
    });
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_flow: %s\n", e.what());
    return 1;
  }
}
