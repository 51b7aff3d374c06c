// tests/core/test_safetensors_fuzz.cpp: regressions for inputs found with the safetensors fuzz target
// (fuzz/fuzz_safetensors.cpp, tools/fuzz.sh); the same inputs are seeds in fuzz/corpus/regress_*.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "core/safetensors.h"

using namespace sanf;

namespace {
void expect_header_error(const std::string& header, int64_t data_size, const std::string& fragment) {
  CAPTURE(header);
  std::map<std::string, std::string> metadata;
  std::vector<TensorEntry> entries;
  try {
    parse_safetensors_header("mem.safetensors", header.data(), header.size(), data_size, metadata, entries);
    FAIL("no error");
  } catch (const Error& e) {
    CHECK_MESSAGE(std::string(e.what()).find(fragment) != std::string::npos, std::string(e.what()));
  }
}
}  // namespace

// data_offsets above 2^63-1 used to wrap to negative int64 begin/end, and `end - begin` overflowed (undefined
// behaviour, reported by UBSan) before the size check rejected them.
TEST_CASE("safetensors: data_offsets of 2^63 and above are rejected without overflow") {
  const std::string msg = "data_offsets must be non-negative integers below 2^63";
  expect_header_error(R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[9223372036854775808,0]}})", 0, msg);
  expect_header_error(R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[0,9223372036854775808]}})", 0, msg);
  expect_header_error(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[18446744073709551615,18446744073709551615]}})",
                      0, msg);
  // the largest allowed offsets still fail cleanly on the size check
  expect_header_error(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,9223372036854775807]}})", 0,
                      "U8 (1,) needs 1 bytes");

  // and through the file reader
  const std::string path = "/tmp/sanf_test_fuzz_regress_" + std::to_string(::getpid()) + ".safetensors";
  const std::string header = R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[9223372036854775808,0]}})";
  {
    std::ofstream f(path, std::ios::binary);
    for (int i = 0; i < 8; ++i) f.put(char((uint64_t(header.size()) >> (8 * i)) & 0xff));
    f << header;
  }
  try {
    SafetensorsFile::open(path);
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find(path) != std::string::npos);
    CHECK(std::string(e.what()).find(msg) != std::string::npos);
  }
  std::remove(path.c_str());
}
