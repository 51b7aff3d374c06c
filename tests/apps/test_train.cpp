// tests/apps/test_train.cpp: run directories, training, resumption, failure handling, eval and the
// one-class loop, on tests/apps/small_run.h's slice of Fashion-MNIST and tiny backbone. The end-to-end
// AUROC floor with the demo's backbone is tests/apps/e2e_test.sh.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "apps/image_io.h"
#include "apps/interrupt.h"
#include "apps/train.h"
#include "core/safetensors.h"
#include "tests/apps/small_run.h"
#include "tests/testing/stale_temp.h"
#include "tests/testing/temp_dir.h"

using namespace sanf;
using namespace sanf::apps;
namespace fs = std::filesystem;
using sanf::testing::TempDir;
using sanf::testing::dead_pid;
using sanf::testing::plant_temp_file;
using sanf::testing::read_file;
using sanf::testing::small_config;

namespace {

int count_lines(const std::string& p) {
  std::ifstream f(p);
  std::string line;
  int n = 0;
  while (std::getline(f, line)) n += !line.empty();
  return n;
}

std::map<std::string, std::vector<double>> flow_tensors(const std::string& path) {
  SafetensorsFile f = SafetensorsFile::open(path);
  std::map<std::string, std::vector<double>> out;
  for (const TensorEntry& e : f.entries()) out[e.name] = f.get(e.name).to_vector();
  return out;
}

}  // namespace

TEST_CASE("train: a run directory is written, reused from the feature cache, and evaluated") {
  TempDir tmp("basic");
  RunConfig c = small_config(tmp);
  TrainResult r = train_run(c, tmp / "run", false);
  CHECK(r.first_epoch == 1);
  CHECK(r.epochs_done == 2);
  CHECK(std::isfinite(r.loss));
  for (const char* f : {"config.json", "flow.safetensors", "train_log.jsonl"}) CHECK(fs::exists(tmp / ("run/" + std::string(f))));
  CHECK(count_lines(tmp / "run/train_log.jsonl") == 2);
  CHECK(std::distance(fs::directory_iterator(tmp / "cache"), fs::directory_iterator()) == 1);  // train features
  const RunConfig back = read_run_config(tmp / "run");
  CHECK(back.normal_label == 1);
  CHECK(back.normal_name == "trouser");
  CHECK(back.flow.dim == 32);
  CHECK(back.flow.tokens == 16);

  // Without --resume an existing run is refused, and nothing in it changes.
  const std::string before = read_file(tmp / "run/flow.safetensors");
  CHECK_THROWS_WITH_AS(train_run(c, tmp / "run", false), doctest::Contains("already holds a run"), Error);
  CHECK(read_file(tmp / "run/flow.safetensors") == before);

  nlohmann::json m = eval_run(tmp / "run", EvalOptions{});
  CHECK(m["n_test"] == 300);
  CHECK(m["n_normal"].get<int64_t>() + m["n_anomalous"].get<int64_t>() == 300);
  CHECK(m["epoch"] == 2);
  CHECK(m["auroc"].get<double>() > 0.5);  // a real floor with the demo's backbone is in e2e_test.sh
  for (const char* f : {"metrics.json", "scores.csv", "roc.svg", "hist_nll.svg", "hist_z2.svg", "report.html"})
    CHECK(fs::exists(tmp / ("run/" + std::string(f))));
  CHECK(count_lines(tmp / "run/scores.csv") == 301);
  CHECK(read_file(tmp / "run/report.html").find("data:image/png;base64,") != std::string::npos);
  CHECK(std::distance(fs::directory_iterator(tmp / "cache"), fs::directory_iterator()) == 2);  // + test features
  // A second evaluation reads the cache and reproduces the scores exactly.
  const std::string scores = read_file(tmp / "run/scores.csv");
  eval_run(tmp / "run", EvalOptions{});
  CHECK(read_file(tmp / "run/scores.csv") == scores);
}

TEST_CASE("train: an interrupted-and-resumed run equals an unbroken one, bit for bit") {
  TempDir tmp("resume");
  RunConfig c = small_config(tmp);
  c.epochs = 3;
  train_run(c, tmp / "whole", false);
  c.epochs = 1;
  train_run(c, tmp / "parts", false);
  CHECK(count_lines(tmp / "parts/train_log.jsonl") == 1);
  c.epochs = 3;
  TrainResult r = train_run(c, tmp / "parts", true);
  CHECK(r.first_epoch == 2);
  CHECK(r.epochs_done == 3);
  CHECK(count_lines(tmp / "parts/train_log.jsonl") == 3);
  CHECK(flow_tensors(tmp / "whole/flow.safetensors") == flow_tensors(tmp / "parts/flow.safetensors"));
  // Done already: a resume with the same epochs trains nothing.
  CHECK(train_run(c, tmp / "parts", true).first_epoch == 4);

  // Another configuration cannot resume it; the error lists what differs.
  RunConfig other = c;
  other.flow.layers = 3;
  other.batch_size = 8;
  CHECK_THROWS_WITH_AS(train_run(other, tmp / "parts", true),
                       doctest::Contains("holds a run with another configuration; differences:\n  batch_size: 16 in the run, 8 now"),
                       Error);
}

TEST_CASE("train: a non-finite loss stops with the step named, the last good checkpoint stays whole") {
  TempDir tmp("nan");
  RunConfig c = small_config(tmp);
  c.epochs = 1;
  train_run(c, tmp / "run", false);
  const std::string ckpt = read_file(tmp / "run/flow.safetensors"), log = read_file(tmp / "run/train_log.jsonl");
  c.epochs = 3;
  c.lr = 1e38;  // the first update throws every weight to +-1e38: the next loss overflows
  CHECK_THROWS_WITH_AS(train_run(c, tmp / "run", true),
                       doctest::Contains("training stopped at epoch 2, step 2 of 6 (global step 8)"), Error);
  try {
    train_run(c, tmp / "run", true);
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("flow.safetensors still holds epoch 1") != std::string::npos);
  }
  CHECK(read_file(tmp / "run/flow.safetensors") == ckpt);
  CHECK(read_file(tmp / "run/train_log.jsonl") == log);
}

TEST_CASE("train: Ctrl-C stops between steps and leaves the complete epochs usable") {
  TempDir tmp("interrupt");
  RunConfig c = small_config(tmp);
  c.epochs = 1;
  train_run(c, tmp / "run", false);
  const std::string ckpt = read_file(tmp / "run/flow.safetensors");
  c.epochs = 2;
  set_interrupted(true);
  CHECK_THROWS_WITH_AS(train_run(c, tmp / "run", true),
                       doctest::Contains("interrupted at epoch 2, step 1 of 6; "), Interrupted);
  set_interrupted(false);
  CHECK(read_file(tmp / "run/flow.safetensors") == ckpt);
  CHECK(eval_run(tmp / "run", EvalOptions{})["epoch"] == 1);  // the last complete epoch evaluates

  // Interrupted while extracting: no cache entry, no temporary file, no run directory.
  RunConfig d = small_config(tmp);
  d.cache_dir = tmp / "cache2";
  set_interrupted(true);
  CHECK_THROWS_AS(train_run(d, tmp / "run2", false), Interrupted);
  set_interrupted(false);
  CHECK(fs::is_empty(tmp / "cache2"));
  CHECK_FALSE(fs::exists(tmp / "run2"));
}

TEST_CASE("train: bad input is refused before anything is written") {
  TempDir tmp("bad");
  RunConfig c = small_config(tmp);
  auto refuses = [&](RunConfig bad, const std::string& message) {
    CHECK_THROWS_WITH_AS(train_run(bad, tmp / "run", false), doctest::Contains(message.c_str()), Error);
    CHECK_FALSE(fs::exists(tmp / "run"));
  };
  RunConfig b = c;
  b.data_dir = tmp / "missing";
  refuses(b, "missing");
  b = c;
  b.normal_class = "spaceship";
  refuses(b, "unknown class 'spaceship'; the classes are 0=t-shirt");
  b = c;
  b.normal_class = "10";
  refuses(b, "unknown class '10'");
  b = c;
  b.backbone.spec = tmp / "nope.safetensors";
  refuses(b, "nope.safetensors");
  // A flow checkpoint is not a ViT: the error names the file.
  {
    RunConfig good = c;
    good.epochs = 1;
    train_run(good, tmp / "ok", false);
  }
  b = c;
  b.backbone.spec = tmp / "ok/flow.safetensors";
  refuses(b, "ok/flow.safetensors");
  b = c;
  b.flow.heads = 3;  // does not divide D/2 = 16
  refuses(b, "flow.heads");
  // A non-empty directory that is not a run.
  fs::create_directories(tmp / "other");
  std::ofstream(tmp / "other/notes.txt") << "mine";
  CHECK_THROWS_WITH_AS(train_run(c, tmp / "other", false), doctest::Contains("not empty and holds no run"), Error);
  // eval of a run without a complete epoch, or of a directory that is not a run.
  CHECK_THROWS_WITH_AS(eval_run(tmp / "other", EvalOptions{}), doctest::Contains("not a run directory"), Error);
}

TEST_CASE("eval: scores.csv names each test image's file for a folder dataset, stale cache files go") {
  TempDir tmp("folder_eval");
  const fs::path data = tmp.path / "data";
  auto image = [&](const fs::path& p, int seed) {
    fs::create_directories(p.parent_path());
    Tensor t = Tensor::empty({3, 16, 16}, DType::U8);
    for (int64_t i = 0; i < 3 * 16 * 16; ++i) t.data<uint8_t>()[i] = uint8_t((seed * 37 + i * (seed + 3)) % 256);
    write_png(p.string(), t);
  };
  for (int k = 0; k < 6; ++k) image(data / "train/ok" / cat("t", k, ".png"), k);
  image(data / "test/ok/b.png", 10);
  image(data / "test/ok/a.png", 11);
  image(data / "test/bad/z, odd.png", 12);  // a comma: the field is quoted
  RunConfig c = small_config(tmp);
  c.dataset = "folder";
  c.data_dir = data.string();
  c.normal_class = "ok";
  c.train_limit = c.test_limit = 0;
  c.epochs = 1;
  c.batch_size = 4;
  train_run(c, tmp / "run", false);
  eval_run(tmp / "run", EvalOptions{});
  std::ifstream f(tmp / "run/scores.csv");
  std::vector<std::string> lines;
  for (std::string line; std::getline(f, line);) lines.push_back(line);
  REQUIRE(lines.size() == 4);
  CHECK(lines[0] == "index,label,label_name,is_anomaly,score_nll,score_z2,path");
  // classes sorted (bad = 0, ok = 1), then files by name; the path is the last field
  auto ends_with = [](const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
  };
  CHECK(lines[1].rfind("0,0,bad,1,", 0) == 0);
  CHECK(ends_with(lines[1], ",\"" + (data / "test/bad/z, odd.png").string() + "\""));
  CHECK(lines[2].rfind("1,1,ok,0,", 0) == 0);
  CHECK(ends_with(lines[2], "," + (data / "test/ok/a.png").string()));
  CHECK(ends_with(lines[3], "," + (data / "test/ok/b.png").string()));

  // A killed extraction's file in the cache directory is removed by the next load_features (the features
  // are cached now, so nothing is written there: only load_features' own sweep can remove it).
  const fs::path stale = plant_temp_file(c.cache_dir, "0123456789abcdef.safetensors", dead_pid(), std::chrono::hours(1));
  const fs::path live = plant_temp_file(c.cache_dir, "fedcba9876543210.safetensors", ::getpid(), std::chrono::hours(1));
  eval_run(tmp / "run", EvalOptions{});
  CHECK_FALSE(fs::exists(stale));
  CHECK(fs::exists(live));
}

TEST_CASE("oneclass: one run per class, a results table, and finished classes are skipped") {
  TempDir tmp("oneclass");
  RunConfig c = small_config(tmp);
  c.epochs = 1;
  c.train_limit = 48;
  OneClassOptions o;
  o.classes = "trouser,8";
  nlohmann::json res = oneclass_run(c, tmp / "out", o);
  REQUIRE(res["classes"].size() == 2);
  CHECK(res["classes"][0]["class"] == 1);
  CHECK(res["classes"][1]["name"] == "bag");
  const double mean = (res["classes"][0]["auroc"].get<double>() + res["classes"][1]["auroc"].get<double>()) / 2;
  CHECK(res["mean"]["auroc"].get<double>() == doctest::Approx(mean));
  CHECK(fs::exists(tmp / "out/1-trouser/report.html"));
  CHECK(count_lines(tmp / "out/results.csv") == 4);  // header, 2 classes, mean
  const std::string index = read_file(tmp / "out/index.html");  // links that resolve from out/
  CHECK(index.find("<a href=\"1-trouser/report.html\">trouser</a>") != std::string::npos);
  CHECK(index.find("<a href=\"8-bag/report.html\">bag</a>") != std::string::npos);
  CHECK(fs::exists(tmp / "out/8-bag/report.html"));
  const std::string metrics = read_file(tmp / "out/8-bag/metrics.json");
  nlohmann::json again = oneclass_run(c, tmp / "out", o);  // skipped: same config, already evaluated
  CHECK(read_file(tmp / "out/8-bag/metrics.json") == metrics);
  CHECK(again["classes"] == res["classes"]);
  CHECK_THROWS_WITH_AS(oneclass_run(c, tmp / "out", OneClassOptions{"trouser,cat", {}}),
                       doctest::Contains("unknown class 'cat'"), Error);
}
