// tests/core/test_atomic_file.cpp: AtomicFile and the streaming safetensors writer.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "autograd/ops.h"
#include "core/atomic_file.h"
#include "core/safetensors.h"
#include "tests/testing/temp_dir.h"

using namespace sanf;
namespace fs = std::filesystem;
using sanf::testing::TempDir;
using sanf::testing::read_file;

namespace {
size_t count_files(const fs::path& d) { return size_t(std::distance(fs::directory_iterator(d), fs::directory_iterator())); }
}  // namespace

TEST_CASE("atomic file: content appears only on commit; an abandoned write leaves nothing") {
  TempDir tmp("atomic_commit");
  const fs::path d = tmp.path;
  const std::string target = (d / "out.txt").string();
  write_file_atomic(target, "old");
  {
    AtomicFile f(target);
    f.write("new content");
    CHECK(read_file(target) == "old");  // not yet committed
    CHECK(count_files(d) == 2);     // target + temporary
  }                                 // destroyed without commit
  CHECK(read_file(target) == "old");
  CHECK(count_files(d) == 1);
  AtomicFile g(target);
  g.write("new");
  g.commit();
  CHECK(read_file(target) == "new");
  CHECK(count_files(d) == 1);
  CHECK_THROWS_WITH_AS(write_file_atomic((d / "no_such_dir" / "x").string(), "x"),
                       doctest::Contains("no_such_dir/x: cannot create"), Error);
}

TEST_CASE("safetensors writer: rows in any order round-trip; missing rows refuse to commit") {
  TempDir tmp("atomic_writer");
  const fs::path d = tmp.path;
  const std::string path = (d / "feats.safetensors").string();
  Generator gen(3);
  Tensor a = randn({5, 3, 2}, DType::F32, Device::CPU, &gen);
  Tensor b = to(randn({5, 4}, DType::F32, Device::CPU, &gen), DType::F16);
  Tensor s = Tensor::from_vector({7.0}, {}, DType::I64);
  {
    SafetensorsWriter w(path, {{"a", DType::F32, {5, 3, 2}}, {"b", DType::F16, {5, 4}}, {"s", DType::I64, {}}},
                        {{"k", "v"}});
    w.write_rows("a", 3, narrow(a, 0, 3, 2));
    w.write_rows("a", 0, narrow(a, 0, 0, 3));
    w.write_rows("b", 0, b);
    CHECK_THROWS_WITH_AS(w.commit(), doctest::Contains("tensor 's' got 0 of its 1 rows"), Error);
  }
  CHECK_FALSE(fs::exists(path));
  CHECK(count_files(d) == 0);
  {
    SafetensorsWriter w(path, {{"a", DType::F32, {5, 3, 2}}, {"b", DType::F16, {5, 4}}, {"s", DType::I64, {}}},
                        {{"k", "v"}});
    CHECK_THROWS_WITH_AS(w.write_rows("a", 4, narrow(a, 0, 0, 2)), doctest::Contains("outside its 5 rows"), Error);
    CHECK_THROWS_WITH_AS(w.write_rows("b", 0, a), doctest::Contains("tensor 'b' is f16, got f32"), Error);
    CHECK_THROWS_WITH_AS(w.write_rows("zz", 0, a), doctest::Contains("no tensor 'zz'"), Error);
    w.write_rows("a", 2, narrow(a, 0, 2, 3));
    w.write_rows("a", 0, narrow(a, 0, 0, 2));
    w.write_rows("b", 0, b);
    w.write_all("s", s);
    w.commit();
  }
  SafetensorsFile f = SafetensorsFile::open(path);
  CHECK(f.metadata().at("k") == "v");
  CHECK(f.get("a").to_vector() == a.to_vector());
  CHECK(f.get("b").to_vector() == b.to_vector());
  CHECK(f.get("s").to_vector() == std::vector<double>{7.0});
}
