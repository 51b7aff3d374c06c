// kernels/cpu/loops.h: how the CPU kernels run their loops: over threads, over instruction sets, and over
// as few strided dims as possible.
//
// parallel_for(n, grain, f) calls f(begin, end) on contiguous pieces covering [0, n). It opens an OpenMP
// team only when every thread gets at least `grain` items, and then only as many threads as that allows;
// below it f(0, n) runs on the calling thread without entering OpenMP at all (a `parallel for if(false)`
// still builds a one-thread team). Inside another parallel region it runs serially. Pieces are multiples
// of `align` items: 16 by default (a cache line of f32, so no two threads write the same line), 1 for rows;
// there are up to 8 per thread, taken dynamically. Which thread runs a piece never changes a result.
//
// Each parallel region costs a fork and a join barrier (microseconds), and between regions the idle
// threads spin, burning the other core while the calling thread runs serial code. Both shrink with fewer,
// larger regions: grains are chosen so that a region holds at least tens of microseconds of work
// (kGrainCheap for a load-op-store pass, kGrainHeavy for a pass with a libm call or a polynomial per
// element), and kernels fuse passes where they can rather than opening one region per pass.
//
// SANF_CPU_CLONES compiles a function for x86-64-v4 (AVX-512), x86-64-v3 (AVX2 + FMA: Haswell and later,
// every Zen) and the baseline, chosen once at load time by CPUID (kernels/cpu/matmul.cpp says why ISA
// levels and not arch names). A loop inside an OpenMP construct is outlined into a function that is *not*
// cloned, so the cloned functions hold plain loops and are called on each piece from parallel_for. The
// compiler may contract a product and an addition into one FMA (one rounding instead of two) in the v3 and
// v4 clones, which have the instruction, and not in the baseline: so an x86-64 CPU without FMA can differ
// in the last bit of such expressions from one with it (every machine this project runs on has it; the
// GPU contracts too). The order of the operations is the code's on every machine.
//
// coalesce(a, b) rewrites two layouts over one shape with the fewest dims: size-1 dims dropped, and dim d
// merged into d+1 wherever both layouts step through them as one (stride[d] == stride[d+1] * shape[d+1]).
// (B, N, D) + pos_embed (1, N, D) becomes rows of N*D; a contiguous pair becomes one flat dim.
// for_rows(a, b, r0, r1, f) then walks rows [r0, r1) of the dims before the last with an odometer (one
// index decomposition per piece, not one per row), calling f(r, offset in a, offset in b).
//
// lane_sum(n, f) = sum of f(0..n) in double, accumulated in kLanes interleaved partial sums (lane k takes
// j = k, k + kLanes, ...; the tail goes to lanes 0, 1, ...) that are then added pairwise in a fixed order.
// A plain `s += f(j)` loop cannot vectorise (that would reorder the additions); the lanes can, and the
// order is fixed by the code, not by the ISA or the thread count (FMA contraction aside, as above). Row
// reductions (layer norm, softmax) use it.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>

#include "core/shape.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SANF_CPU_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SANF_CPU_CLONES
#endif

namespace sanf::kernels::cpu {

// Items per thread below which another thread does not pay: ~16K simple f32 passes take about 5 us, the
// cost of a fork/join on a warm team.
constexpr int64_t kGrainCheap = int64_t(1) << 14;
constexpr int64_t kGrainHeavy = int64_t(1) << 11;

// The number of threads parallel_for would use for n items.
inline int parallel_threads(int64_t n, int64_t grain) {
  if (omp_in_parallel()) return 1;
  const int64_t by_work = n / std::max<int64_t>(grain, 1);
  return int(std::clamp<int64_t>(by_work, 1, omp_get_max_threads()));
}

template <typename F>
void parallel_for(int64_t n, int64_t grain, F&& f, int64_t align = 16) {
  const int threads = n > 0 ? parallel_threads(n, grain) : 1;
  if (threads <= 1) {
    if (n > 0) f(int64_t(0), n);
    return;
  }
  // Up to 8 pieces per thread (each still >= grain), handed out first come, first served: a thread that
  // the OS takes off its core for a while (other programs on a 2-core machine) holds up the rest by one
  // piece, not by half the work.
  const int64_t pieces = std::clamp<int64_t>(n / std::max<int64_t>(grain, 1), threads, int64_t(threads) * 8);
  const int64_t per = ((n + pieces - 1) / pieces + align - 1) / align * align;
  const int64_t count = (n + per - 1) / per;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
  for (int64_t p = 0; p < count; ++p) f(p * per, std::min(n, (p + 1) * per));
}

inline void coalesce(Layout& a, Layout& b) {
  Layout ca, cb;
  for (int d = 0; d < a.ndim; ++d) {
    if (a.shape[d] == 1) continue;
    const int k = ca.ndim - 1;
    if (k >= 0 && ca.strides[k] == a.strides[d] * a.shape[d] && cb.strides[k] == b.strides[d] * a.shape[d]) {
      ca.shape[k] *= a.shape[d], cb.shape[k] = ca.shape[k];
      ca.strides[k] = a.strides[d], cb.strides[k] = b.strides[d];
      continue;
    }
    ca.shape[ca.ndim] = cb.shape[cb.ndim] = a.shape[d];
    ca.strides[ca.ndim++] = a.strides[d];
    cb.strides[cb.ndim++] = b.strides[d];
  }
  a = ca, b = cb;
}

constexpr int kLanes = 8;

template <typename F>
[[gnu::always_inline]] inline double lane_sum(int64_t n, F&& f) {
  double acc[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int k = 0; k < kLanes; ++k) acc[k] += f(j + k);
  for (int k = 0; j < n; ++j, ++k) acc[k] += f(j);
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

template <typename F>
void for_rows(const Layout& a, const Layout& b, int64_t r0, int64_t r1, F&& f) {
  const int outer = a.ndim - 1;
  int64_t idx[kMaxDims] = {};
  int64_t rem = r0, oa = 0, ob = 0;
  for (int d = outer - 1; d >= 0; --d) {
    idx[d] = rem % a.shape[d];
    rem /= a.shape[d];
    oa += idx[d] * a.strides[d];
    ob += idx[d] * b.strides[d];
  }
  for (int64_t r = r0; r < r1; ++r) {
    f(r, oa, ob);
    for (int d = outer - 1; d >= 0; --d) {
      oa += a.strides[d], ob += b.strides[d];
      if (++idx[d] < a.shape[d]) break;
      oa -= a.strides[d] * a.shape[d], ob -= b.strides[d] * a.shape[d], idx[d] = 0;
    }
  }
}

}  // namespace sanf::kernels::cpu
