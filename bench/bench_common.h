// bench/bench_common.h: the timing method every benchmark shares (its PyTorch twin is bench_common.py).
//
// A figure is the median of repeated calls after warm-up, stopping at max_reps or once budget_s has passed
// (with at least 3 samples). CUDA calls are synchronised before the clock is read.
#pragma once

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "kernels/dispatch.h"

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

// x rounded to `decimals` places, for JSON lines a person reads too (the JSON writer then prints the short form).
inline double rounded(double x, int decimals) {
  const double k = std::pow(10.0, decimals);
  return std::round(x * k) / k;
}

// Prints one JSON line, {"impl": "sanf", <fields in order>}, spaced as Python's json.dumps spaces the peers'
// lines, and flushes it (a benchmark killed later keeps its earlier lines).
inline void emit(const nlohmann::ordered_json& fields) {
  std::string line = "{\"impl\": \"sanf\"";
  for (const auto& [key, value] : fields.items()) line += ", " + nlohmann::json(key).dump() + ": " + value.dump();
  std::puts((line + "}").c_str());
  std::fflush(stdout);
}

// The kernel calls (kernels::kernel_calls()) one call of fn dispatches: on CUDA each is at least one launch,
// so calls x a few microseconds is a floor under fn's time however fast the GPU.
inline uint64_t kernel_calls_of(const std::function<void()>& fn) {
  const uint64_t before = kernels::kernel_calls();
  fn();
  return kernels::kernel_calls() - before;
}

// Times fn and prints one JSON line: impl, device, op, shape, threads, ms, kernel_calls (per call of fn).
inline void report(const Settings& s, const std::string& op, const std::string& shape,
                   const std::function<void()>& fn) {
  const double ms = median_ms(s, fn);
  const uint64_t calls = kernel_calls_of(fn);
  emit({{"device", device_name(s.device)}, {"op", op}, {"shape", shape}, {"threads", omp_get_max_threads()},
        {"ms", rounded(ms, 4)}, {"kernel_calls", calls}});
}

}  // namespace sanf::bench
