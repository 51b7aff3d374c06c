// core/dtype.h: element types and devices.
//
// Compute dtypes are f32 (the default) and f64 (what gradient checks use). bf16 and f16 are storage types:
// tensors of them can be created, converted and saved, and ops upcast them first. i64 holds indices
// (index_select, permutations); u8 holds raw image bytes.
#pragma once

#include <cstdint>
#include <cstring>
#include <ostream>
#include <string>

#if defined(__CUDACC__)
#define SANF_HD __host__ __device__ inline
#else
#define SANF_HD inline
#endif

namespace sanf {

enum class DType : uint8_t { F32, F64, BF16, F16, I64, U8 };
enum class Device : uint8_t { CPU, CUDA };

int64_t dtype_size(DType dt);
const char* dtype_name(DType dt);  // "f32", "f64", "bf16", "f16", "i64", "u8"
DType dtype_from_name(const std::string& name);  // accepts the names above and safetensors' "F32", "BF16", ...
bool is_floating(DType dt);
const char* device_name(Device d);  // "cpu", "cuda"
inline std::ostream& operator<<(std::ostream& os, DType dt) { return os << dtype_name(dt); }
inline std::ostream& operator<<(std::ostream& os, Device d) { return os << device_name(d); }

// ---- bf16 / f16 bit conversions (round to nearest even), usable on host and device ----------------

// bf16 is the top 16 bits of an f32. Rounding adds 0x7fff plus the lowest kept bit; NaN stays NaN.
SANF_HD uint16_t f32_to_bf16_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}
SANF_HD float bf16_bits_to_f32(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

// IEEE half: 1 sign, 5 exponent (bias 15), 10 mantissa bits.
SANF_HD uint16_t f32_to_f16_bits(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t mag = x & 0x7fffffffu;
  if (mag > 0x7f800000u) return uint16_t(sign | 0x7e00u);      // NaN
  if (mag >= 0x477ff000u) return uint16_t(sign | 0x7c00u);     // overflows to inf (65520 rounds up)
  if (mag < 0x38800000u) {                                      // subnormal half (or zero)
    // value = mag_float; half subnormal unit is 2^-24. Shift the full mantissa with rounding.
    uint32_t e = mag >> 23;
    if (e < 102) return uint16_t(sign);                         // below half the smallest subnormal
    uint32_t m = (mag & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - e;                                   // 14 + (112 - e) ... bits to drop
    uint32_t r = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1u))) ++r;
    return uint16_t(sign | r);
  }
  uint32_t r = ((mag - 0x38000000u) >> 13);                     // rebias exponent 127 -> 15
  uint32_t rem = mag & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) ++r;
  return uint16_t(sign | r);
}
SANF_HD float f16_bits_to_f32(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  uint32_t u;
  if (e == 0) {
    if (m == 0) {
      u = sign;
    } else {  // subnormal: normalise
      e = 113;
      while (!(m & 0x400u)) { m <<= 1; --e; }
      u = sign | (e << 23) | ((m & 0x3ffu) << 13);
    }
  } else if (e == 31) {
    u = sign | 0x7f800000u | (m << 13);
  } else {
    u = sign | ((e + 112) << 23) | (m << 13);
  }
  float f;
  memcpy(&f, &u, 4);
  return f;
}

// Storage wrappers so templates can tell the 16-bit types apart.
struct bf16 { uint16_t bits; };
struct f16 { uint16_t bits; };

// to_f32/from_f32-style conversions for every storage type, used by copy kernels.
template <typename T> SANF_HD double load_as_double(const T* p, int64_t i) { return double(p[i]); }
template <> SANF_HD double load_as_double<bf16>(const bf16* p, int64_t i) { return bf16_bits_to_f32(p[i].bits); }
template <> SANF_HD double load_as_double<f16>(const f16* p, int64_t i) { return f16_bits_to_f32(p[i].bits); }
template <typename T> SANF_HD void store_from_double(T* p, int64_t i, double v) { p[i] = T(v); }
template <> SANF_HD void store_from_double<bf16>(bf16* p, int64_t i, double v) { p[i].bits = f32_to_bf16_bits(float(v)); }
template <> SANF_HD void store_from_double<f16>(f16* p, int64_t i, double v) { p[i].bits = f32_to_f16_bits(float(v)); }

}  // namespace sanf

// SANF_DISPATCH_FLOAT(dt, opname, ...): run the body with `scalar_t` bound to float or double, or throw
// an error naming the op for any other dtype.
#define SANF_DISPATCH_FLOAT(dt, opname, ...)                                        \
  [&] {                                                                             \
    switch (dt) {                                                                   \
      case ::sanf::DType::F32: { using scalar_t = float; return __VA_ARGS__(); }    \
      case ::sanf::DType::F64: { using scalar_t = double; return __VA_ARGS__(); }   \
      default:                                                                      \
        SANF_FAIL("[", opname, "] unsupported dtype ", ::sanf::dtype_name(dt),      \
                  " (compute dtypes are f32 and f64)");                             \
    }                                                                               \
  }()

// SANF_DISPATCH_ALL(dt, opname, ...): every storage dtype (float, double, bf16, f16, int64_t, uint8_t).
#define SANF_DISPATCH_ALL(dt, opname, ...)                                          \
  [&] {                                                                             \
    switch (dt) {                                                                   \
      case ::sanf::DType::F32: { using scalar_t = float; return __VA_ARGS__(); }    \
      case ::sanf::DType::F64: { using scalar_t = double; return __VA_ARGS__(); }   \
      case ::sanf::DType::BF16: { using scalar_t = ::sanf::bf16; return __VA_ARGS__(); } \
      case ::sanf::DType::F16: { using scalar_t = ::sanf::f16; return __VA_ARGS__(); }   \
      case ::sanf::DType::I64: { using scalar_t = int64_t; return __VA_ARGS__(); }  \
      case ::sanf::DType::U8: { using scalar_t = uint8_t; return __VA_ARGS__(); }   \
    }                                                                               \
    SANF_FAIL("[", opname, "] bad dtype");                                          \
  }()
