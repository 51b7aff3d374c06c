// tests/core/test_atomic_file.cpp: AtomicFile and the streaming safetensors writer.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "autograd/ops.h"
#include "core/atomic_file.h"
#include "core/safetensors.h"
#include "tests/testing/stale_temp.h"
#include "tests/testing/temp_dir.h"

using namespace sanf;
namespace fs = std::filesystem;
using sanf::testing::TempDir;
using sanf::testing::read_file;

namespace {
size_t count_files(const fs::path& d) { return size_t(std::distance(fs::directory_iterator(d), fs::directory_iterator())); }
}  // namespace

TEST_CASE("atomic file: content appears only on commit, an abandoned write leaves nothing") {
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

TEST_CASE("safetensors writer: rows in any order round-trip, missing rows refuse to commit") {
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

TEST_CASE("atomic file: the temporary file is named <path>.tmp.<host>.<pid>") {
  TempDir tmp("atomic_name");
  const std::string target = (tmp.path / "out.txt").string();
  const std::string t = temp_path_for(target);
  const std::string pid = std::string(".") + std::to_string(::getpid());
  CHECK(t.rfind(target + ".tmp.", 0) == 0);
  CHECK(t.compare(t.size() - pid.size(), pid.size(), pid) == 0);
  const std::string host = t.substr(target.size() + 5, t.size() - target.size() - 5 - pid.size());
  CHECK(!host.empty());
  CHECK(host.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") == std::string::npos);
  AtomicFile f(target);
  CHECK(fs::exists(t));  // the name the writer really uses
}

TEST_CASE("atomic file: stale temporary files of dead writers on this host are reclaimed, nothing else") {
  using sanf::testing::dead_pid;
  using sanf::testing::plant_temp_file;
  using std::chrono::seconds;
  TempDir tmp("atomic_reclaim");
  const fs::path d = tmp.path;
  const pid_t dead = dead_pid();
  const seconds old(3600), fresh(0);
  const fs::path stale = plant_temp_file(d, "feats.safetensors", dead, old, std::string(1000, 'x'));
  const fs::path young = plant_temp_file(d, "young.safetensors", dead, fresh);   // too recent
  const fs::path live = plant_temp_file(d, "live.safetensors", ::getpid(), old);  // a running writer
  const fs::path other_host = plant_temp_file(d, "net.safetensors", dead, old, "x", "some-other-host");
  const fs::path pid0 = plant_temp_file(d, "zero.txt", 0, old);             // kill(0, 0) would be a group
  const fs::path not_pid = d / (fs::path(temp_path_for("weird.txt")).filename().string() + "x");  // <pid>x
  const fs::path unrelated = d / "notes.txt";
  for (const fs::path& p : {not_pid, unrelated}) {
    sanf::testing::write_file(p, "mine");
    fs::last_write_time(p, fs::file_time_type::clock::now() - old);
  }
  const fs::path dir = stale.string() + "0";  // a directory with a dead writer's name: never removed
  fs::create_directory(dir);
  const size_t before = count_files(d);
  const ReclaimedFiles r = reclaim_stale_temp_files(d.string());
  CHECK(r.files == 1);
  CHECK(r.bytes == 1000);
  CHECK_FALSE(fs::exists(stale));
  for (const fs::path& p : {young, live, other_host, pid0, not_pid, unrelated, dir}) {
    CAPTURE(p);
    CHECK(fs::exists(p));
  }
  CHECK(count_files(d) == before - 1);
  // With no minimum age the young one goes too; the live one never does.
  CHECK(reclaim_stale_temp_files(d.string(), seconds(0)).files == 1);
  CHECK_FALSE(fs::exists(young));
  CHECK(fs::exists(live));
  CHECK(reclaim_stale_temp_files((d / "no_such_dir").string()).files == 0);
}

TEST_CASE("atomic file: a writer sweeps its directory before it creates its temporary file") {
  TempDir tmp("atomic_sweep");
  const fs::path stale =
      sanf::testing::plant_temp_file(tmp.path, "flow.safetensors", sanf::testing::dead_pid(), std::chrono::hours(1));
  write_file_atomic((tmp.path / "config.json").string(), "{}");
  CHECK_FALSE(fs::exists(stale));
  CHECK(count_files(tmp.path) == 1);
}
