// tests/cuda/test_cuda_extract.cpp: streaming extraction on CUDA, where the host's decoding and writing
// overlap the device's forward (tests/apps/extract_check.h).
#include "tests/apps/extract_check.h"
#include "tests/cuda/parity.h"

using namespace sanf;

TEST_CASE("cuda extract: batched, pipelined extraction on the device writes every sample in order") {
  SANF_SKIP_WITHOUT_CUDA();
  for (int64_t batch : {1, 3, 4, 11, 64}) testing::check_extraction(Device::CUDA, batch);
}
