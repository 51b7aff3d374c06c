// tests/core/test_safetensors.cpp: round trips, and a clear error for every kind of corrupt file.
#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <unistd.h>

#include "autograd/ops.h"
#include "core/atomic_file.h"
#include "core/safetensors.h"

using namespace sanf;

namespace {
std::string temp_path(const std::string& stem) {
  return "/tmp/sanf_test_" + stem + "_" + std::to_string(::getpid()) + ".safetensors";
}

// Write a file from a raw header string and a data blob (for hand-made corrupt files).
std::string write_raw(const std::string& stem, const std::string& header, const std::string& data,
                      int64_t claimed_len = -1) {
  std::string path = temp_path(stem);
  std::ofstream f(path, std::ios::binary);
  uint64_t n = claimed_len >= 0 ? uint64_t(claimed_len) : header.size();
  for (int i = 0; i < 8; ++i) f.put(char((n >> (8 * i)) & 0xff));
  f << header << data;
  return path;
}

void expect_error(const std::string& path, const std::string& fragment) {
  CAPTURE(fragment);
  bool threw = false;
  try {
    SafetensorsFile::open(path);
  } catch (const Error& e) {
    threw = true;
    std::string msg = e.what();
    CHECK_MESSAGE(msg.find(path) != std::string::npos, msg);
    CHECK_MESSAGE(msg.find(fragment) != std::string::npos, msg);
  }
  CHECK(threw);
  std::remove(path.c_str());
}
}  // namespace

TEST_CASE("safetensors: round trip of every dtype, metadata, and non-contiguous views") {
  Tensor a = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = transpose(Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3}, DType::F64), 0, 1);  // non-contiguous
  Tensor c = Tensor::from_vector({0.5, -1.25}, {2}, DType::BF16);
  Tensor d = Tensor::from_vector({0.5, -1.25, 3}, {3}, DType::F16);
  Tensor e = Tensor::from_vector({7, -8, 9}, {3}, DType::I64);
  Tensor f = Tensor::from_vector({1, 2, 255}, {3}, DType::U8);
  Tensor scalar = Tensor::from_vector({3.5}, {});
  Tensor empty = zeros({0, 4});
  std::string path = temp_path("roundtrip");
  save_safetensors(path, {{"a", a}, {"b", b}, {"c", c}, {"d", d}, {"e", e}, {"f", f}, {"s", scalar}, {"z", empty}},
                   {{"arch", "vit-tiny"}, {"note", "hello"}});
  SafetensorsFile file = SafetensorsFile::open(path);
  CHECK(file.metadata().at("arch") == "vit-tiny");
  CHECK(file.entries().size() == 8);
  CHECK(file.get("a").to_vector() == a.to_vector());
  CHECK(file.get("b").shape() == Shape{3, 2});
  CHECK(file.get("b").to_vector() == b.to_vector());
  CHECK(file.get("c").dtype() == DType::BF16);
  CHECK(file.get("c").to_vector() == c.to_vector());
  CHECK(file.get("d").to_vector() == d.to_vector());
  CHECK(file.get("e").to_vector() == e.to_vector());
  CHECK(file.get("f").to_vector() == f.to_vector());
  CHECK(file.get("s").shape() == Shape{});
  CHECK(file.get("s").item() == 3.5);
  CHECK(file.get("z").shape() == Shape{0, 4});
  CHECK_THROWS_WITH_AS(file.get("nope"), doctest::Contains("no tensor named 'nope'"), Error);
  // A tensor outlives the file object (it keeps the mapping alive).
  Tensor kept = SafetensorsFile::open(path).get("a");
  CHECK(kept.to_vector() == a.to_vector());
  std::remove(path.c_str());
}

TEST_CASE("safetensors: the writer leaves no temporary file and replaces atomically") {
  std::string path = temp_path("atomic");
  save_safetensors(path, {{"x", ones({2})}});
  save_safetensors(path, {{"x", zeros({3})}});
  CHECK(SafetensorsFile::open(path).get("x").to_vector() == std::vector<double>{0, 0, 0});
  CHECK(std::ifstream(temp_path_for(path)).good() == false);
  CHECK_THROWS_WITH_AS(save_safetensors("/nonexistent-dir/x.safetensors", {{"x", ones({1})}}),
                       doctest::Contains("cannot create"), Error);
  std::remove(path.c_str());
}

TEST_CASE("safetensors: corrupt files give errors naming the file and the problem") {
  const std::string ok_entry = R"("w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  const std::string eight(8, '\0');
  {
    std::string path = temp_path("tiny");
    std::ofstream(path, std::ios::binary) << "abc";
    expect_error(path, "too short");
  }
  expect_error(write_raw("past_end", "{" + ok_entry + "}", eight, 1000), "runs past the end");
  expect_error(write_raw("huge_header", "{}", "", int64_t(1) << 40), "larger than the 100 MiB limit");
  expect_error(write_raw("bad_json", "{\"w\": [1, 2", eight), "not valid JSON");
  expect_error(write_raw("not_object", "[1, 2]", ""), "not a JSON object");
  expect_error(write_raw("truncated", "{" + ok_entry + "}", "abcd"), "truncated");
  expect_error(write_raw("trailing", "{" + ok_entry + "}", eight + "xx"), "unexpected bytes after the last tensor");
  expect_error(write_raw("dtype", R"({"w":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}})", eight),
               "tensor 'w': unsupported dtype I32");
  expect_error(write_raw("size", R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", eight),
               "tensor 'w': F32 (3,) needs 12 bytes, data_offsets give 8");
  expect_error(write_raw("overlap",
                         R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                         R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                         eight + "abcd"),
               "tensor 'b' overlaps");
  expect_error(write_raw("gap",
                         R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                         R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                         eight + "abcd"),
               "gap of 4 bytes before tensor 'b'");
  expect_error(write_raw("neg_shape", R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", eight),
               "shape entries must be non-negative");
  expect_error(write_raw("offsets", R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", eight),
               "data_offsets must be [begin, end]");
  expect_error(write_raw("meta", R"({"__metadata__":{"a":1}})", ""), "__metadata__ value of 'a' is not a string");
  expect_error("/nonexistent/file.safetensors", "cannot open");
}
