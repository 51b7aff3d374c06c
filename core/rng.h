// core/rng.h: a seeded random generator that gives the same numbers on every machine.
//
// xoshiro256** (Blackman & Vigna) seeded through splitmix64: integer arithmetic only, so the raw stream is
// identical everywhere. Normals come from the Box-Muller transform (std::log/std::sqrt/std::cos, correctly
// rounded enough that every x86-64 and arm64 libm tested gives the same float32 values).
//
// Devices: randn/rand of a CUDA tensor draw on the GPU with cuRAND's Philox generator, seeded with one
// next_u64() of this generator (kernels/random.h): reproducible for a seed, but a different stream from the
// CPU's, so CPU and CUDA tensors drawn from equal seeds hold different numbers. Model initialisation
// (trunc_normal, the ViT's cls_token) draws here on the host and copies, so a seeded model is the same on
// both devices.
#pragma once

#include <cstdint>
#include <vector>

namespace sanf {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) { seed_with(seed); }
  void seed_with(uint64_t seed);

  uint64_t next_u64();
  double uniform();                          // [0, 1), 53 random bits
  double uniform(double lo, double hi);      // [lo, hi)
  uint64_t below(uint64_t n);                // uniform integer in [0, n), unbiased (rejection)
  double normal();                           // standard normal
  // Normal(mean, std) truncated to [lo, hi] by rejection (as timm's trunc_normal_ bounds are absolute).
  double trunc_normal(double mean, double std, double lo, double hi);
  std::vector<int64_t> permutation(int64_t n);  // Fisher-Yates shuffle of 0..n-1

 private:
  uint64_t s_[4] = {};
  bool has_spare_ = false;
  double spare_ = 0.0;
};

// The process-wide default generator (seeded 0); set with manual_seed().
Generator& default_generator();
void manual_seed(uint64_t seed);

}  // namespace sanf
