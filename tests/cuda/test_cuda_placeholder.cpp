// tests/cuda: CPU-CUDA parity of every op. Filled in by the CUDA backend work.
#include <doctest/doctest.h>

#include "core/tensor.h"

TEST_CASE("cuda: availability is reported") {
  if (!sanf::cuda_available()) MESSAGE("SKIPPED: no CUDA device (or a build without CUDA): CUDA parity tests skipped");
  CHECK(true);
}
