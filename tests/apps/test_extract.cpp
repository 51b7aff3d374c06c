// tests/apps/test_extract.cpp: streaming extraction on the CPU (tests/apps/extract_check.h).
#include "tests/apps/extract_check.h"

using namespace sanf;

TEST_CASE("extract: batched, pipelined extraction writes every sample's tokens, label and index in order") {
  for (int64_t batch : {1, 3, 4, 11, 64}) testing::check_extraction(Device::CPU, batch);
}
