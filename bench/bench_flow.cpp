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

#include "flows/flow.h"

using namespace sanf;

namespace {
Device g_dev = Device::CPU;
bool g_quick = false;

void sync() {
  if (g_dev == Device::CUDA) cuda_synchronize();
}

double median_ms(const std::function<void()>& fn) {
  for (int i = 0; i < (g_quick ? 1 : 2); ++i) fn();
  sync();
  std::vector<double> t;
  auto start_all = std::chrono::steady_clock::now();
  const int max_reps = g_quick ? 3 : 20;
  const double budget_s = g_quick ? 1.0 : 10.0;
  while (int(t.size()) < max_reps) {
    auto t0 = std::chrono::steady_clock::now();
    fn();
    sync();
    auto t1 = std::chrono::steady_clock::now();
    t.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    if (std::chrono::duration<double>(t1 - start_all).count() > budget_s && t.size() >= 3) break;
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

void report(const std::string& op, const std::string& shape, const std::function<void()>& fn) {
  double ms = median_ms(fn);
  std::printf(
      "{\"impl\": \"sanf\", \"device\": \"%s\", \"op\": \"%s\", \"shape\": \"%s\", \"threads\": %d, \"ms\": %.4f}\n",
      device_name(g_dev), op.c_str(), shape.c_str(), omp_get_max_threads(), ms);
  std::fflush(stdout);
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
