// bench/bench_common.h: the timing method every benchmark shares (its PyTorch twin is bench_common.py).
//
// A figure is the median of repeated calls after warm-up, stopping at max_reps or once budget_s has passed
// (with at least 3 samples). CUDA calls are synchronised before the clock is read.
#pragma once

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace sanf::bench {

struct Settings {
  Device device = Device::CPU;
  int warmup = 3;
  int max_reps = 50;
  double budget_s = 1.0;
};

inline double median_ms(const Settings& s, const std::function<void()>& fn) {
  auto sync = [&] {
    if (s.device == Device::CUDA) cuda_synchronize();
  };
  for (int i = 0; i < s.warmup; ++i) fn();
  sync();
  std::vector<double> t;
  const auto start = std::chrono::steady_clock::now();
  while (int(t.size()) < s.max_reps) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    sync();
    const auto t1 = std::chrono::steady_clock::now();
    t.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    if (std::chrono::duration<double>(t1 - start).count() > s.budget_s && t.size() >= 3) break;
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Times fn and prints one JSON line: impl, device, op, shape, threads, ms.
inline void report(const Settings& s, const std::string& op, const std::string& shape,
                   const std::function<void()>& fn) {
  const double ms = median_ms(s, fn);
  std::printf(
      "{\"impl\": \"sanf\", \"device\": \"%s\", \"op\": \"%s\", \"shape\": \"%s\", \"threads\": %d, \"ms\": %.4f}\n",
      device_name(s.device), op.c_str(), shape.c_str(), omp_get_max_threads(), ms);
  std::fflush(stdout);
}

}  // namespace sanf::bench
