// core/dtype.cpp: dtype and device names and sizes.
#include "core/dtype.h"

#include "core/error.h"

namespace sanf {

int64_t dtype_size(DType dt) {
  switch (dt) {
    case DType::F32: return 4;
    case DType::F64: return 8;
    case DType::BF16: return 2;
    case DType::F16: return 2;
    case DType::I64: return 8;
    case DType::U8: return 1;
  }
  SANF_FAIL("bad dtype ", int(dt));
}

const char* dtype_name(DType dt) {
  switch (dt) {
    case DType::F32: return "f32";
    case DType::F64: return "f64";
    case DType::BF16: return "bf16";
    case DType::F16: return "f16";
    case DType::I64: return "i64";
    case DType::U8: return "u8";
  }
  return "?";
}

DType dtype_from_name(const std::string& n) {
  if (n == "f32" || n == "F32") return DType::F32;
  if (n == "f64" || n == "F64") return DType::F64;
  if (n == "bf16" || n == "BF16") return DType::BF16;
  if (n == "f16" || n == "F16") return DType::F16;
  if (n == "i64" || n == "I64") return DType::I64;
  if (n == "u8" || n == "U8") return DType::U8;
  SANF_FAIL("unknown dtype '", n, "' (known: f32 f64 bf16 f16 i64 u8)");
}

bool is_floating(DType dt) { return dt == DType::F32 || dt == DType::F64 || dt == DType::BF16 || dt == DType::F16; }

const char* device_name(Device d) { return d == Device::CPU ? "cpu" : "cuda"; }

}  // namespace sanf
