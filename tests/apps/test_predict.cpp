// tests/apps/test_predict.cpp: decision thresholds, sanf predict and sanf export, on tests/apps/small_run.h's
// slice of Fashion-MNIST and tiny backbone.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>

#include "apps/detector.h"
#include "apps/image_io.h"
#include "apps/metrics.h"
#include "apps/predict.h"
#include "apps/scoring.h"
#include "core/safetensors.h"
#include "tests/apps/small_run.h"

using namespace sanf;
using namespace sanf::apps;
namespace fs = std::filesystem;
using nlohmann::json;
using sanf::testing::read_file;
using sanf::testing::small_config;
using sanf::testing::TempDir;

namespace {

double fraction_flagged(const std::vector<double>& s, double t) {
  return double(std::count_if(s.begin(), s.end(), [&](double v) { return v >= t; })) / double(s.size());
}

// The images of a dataset source, in order, through predict.
std::vector<Prediction> predict_dataset(Detector& d, const Dataset& ds, const Threshold& t,
                                        PredictOptions o = {}) {
  o.progress = false;
  return predict(d, {{&ds, "fashion-mnist:test"}}, t, o);
}

json read_json(const std::string& path) {
  std::ifstream f(path);
  return json::parse(f);
}

}  // namespace

TEST_CASE("thresholds: threshold_at_fpr flags at most the target fraction of the normal scores") {
  std::mt19937 rng(7);
  std::normal_distribution<double> normal(0, 1);
  for (int n : {1, 7, 50, 100, 333, 1000}) {
    std::vector<double> s(static_cast<size_t>(n));
    for (double& v : s) v = normal(rng);
    for (double fpr : {0.0, 0.01, 0.05, 0.1, 0.5}) {
      CAPTURE(n);
      CAPTURE(fpr);
      const FprThreshold t = threshold_at_fpr(s, fpr);
      const auto k = int64_t(std::floor(fpr * n + 1e-9));
      // Distinct scores: exactly k flagged, and the threshold lies strictly between the scores it separates.
      CHECK(fraction_flagged(s, t.threshold) == doctest::Approx(double(k) / n));
      CHECK(t.fpr_reached == fraction_flagged(s, t.threshold));
      CHECK(t.resolved == (fpr > 0 && n * fpr >= 1 - 1e-9));
      CHECK(t.lo == *std::min_element(s.begin(), s.end()));
      CHECK(t.hi == *std::max_element(s.begin(), s.end()));
      if (k == 0) CHECK(t.threshold == std::nextafter(t.hi, std::numeric_limits<double>::infinity()));
    }
  }
  // Ties are never split: three equal top scores with one allowed to be flagged -> none flagged.
  const FprThreshold tied = threshold_at_fpr({1, 2, 3, 5, 5, 5, 4, 0, 0.5, 1.5}, 0.1);
  CHECK(tied.fpr_reached == 0);
  CHECK(tied.threshold > 5);
  // Two allowed and two tied at the top: the threshold is halfway between them and the next score, 4.
  const FprThreshold two = threshold_at_fpr({1, 2, 3, 5, 5, 4, 0, 0.5, 1.5, 2.5}, 0.2);
  CHECK(two.threshold == 4.5);
  CHECK(two.fpr_reached == 0.2);
  CHECK_THROWS_WITH_AS(threshold_at_fpr({}, 0.1), doctest::Contains("no normal scores"), Error);
  CHECK_THROWS_WITH_AS(threshold_at_fpr({1, NAN}, 0.1), doctest::Contains("normal score 1 is nan"), Error);
  CHECK_THROWS_WITH_AS(threshold_at_fpr({1, 2}, 1.0), doctest::Contains("[0, 1)"), Error);
}

TEST_CASE("thresholds: rates_at and normalized_score") {
  const std::vector<double> s = {0.1, 0.4, 0.35, 0.8, 0.9, 0.2};
  const std::vector<int> y = {0, 0, 1, 1, 1, 0};
  const Rates r = rates_at(s, y, 0.35);  // flagged: 0.4 (normal), 0.35, 0.8, 0.9 (anomalous)
  CHECK(r.tp == 3);
  CHECK(r.fp == 1);
  CHECK(r.tn == 2);
  CHECK(r.fn == 0);
  CHECK(r.precision == 0.75);
  CHECK(r.recall == 1.0);
  CHECK(r.fpr == doctest::Approx(1.0 / 3));
  const Rates none = rates_at(s, y, 2.0);
  CHECK(none.precision == 0);
  CHECK(none.recall == 0);
  CHECK(none.fpr == 0);
  CHECK(normalized_score(5, 5, 0, 10) == 0.5);
  CHECK(normalized_score(7.5, 5, 0, 10) == 0.75);
  CHECK(normalized_score(100, 5, 0, 10) == 1.0);
  CHECK(normalized_score(-100, 5, 0, 10) == 0.0);
  CHECK(normalized_score(3, 5, 2, 2) == 0.5);
}

TEST_CASE("thresholds: choose_threshold picks, recomputes and refuses as documented") {
  json data = json::object();
  data["calibration"] = {{"fpr", 0.1}, {"scores_nll", std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}}};
  data["f1"] = {{"value", 3.5}, {"lo", 0.0}, {"hi", 20.0}, {"flags_all", false}};
  const Threshold a = choose_threshold(data, "auto", {}, "RUN");
  CHECK(a.kind == "fpr");
  CHECK(a.value == 9.5);  // one of ten flagged
  CHECK(a.lo == 1.0);
  CHECK(a.hi == 10.0);
  CHECK(choose_threshold(data, "fpr", 0.3, "RUN").value == 7.5);
  // A number: used as given, normalised over the held-out range.
  const Threshold v = choose_threshold(data, "3.25", {}, "RUN");
  CHECK(v.kind == "value");
  CHECK(v.value == 3.25);
  CHECK(v.lo == 1.0);
  CHECK(v.hi == 10.0);
  CHECK(threshold_number("-3e2") == -300.0);
  CHECK_FALSE(threshold_number("3.2x"));
  CHECK_FALSE(threshold_number("nan"));
  const Threshold f = choose_threshold(data, "f1", {}, "RUN");
  CHECK(f.kind == "f1");
  CHECK(f.value == 3.5);
  data.erase("calibration");
  CHECK(choose_threshold(data, "auto", {}, "RUN").kind == "f1");
  CHECK_THROWS_WITH_AS(choose_threshold(data, "fpr", {}, "RUN"), doctest::Contains("RUN: no held-out normal scores"), Error);
  data["f1"]["flags_all"] = true;
  CHECK_THROWS_WITH_AS(choose_threshold(data, "auto", {}, "RUN"), doctest::Contains("flags every test image"), Error);
  data.erase("f1");
  CHECK_THROWS_WITH_AS(choose_threshold(data, "f1", {}, "RUN"), doctest::Contains("run sanf eval first"), Error);
  CHECK_THROWS_WITH_AS(choose_threshold(data, "best", {}, "RUN"), doctest::Contains("unknown threshold kind"), Error);
}

TEST_CASE("predict: a run's held-out threshold, eval's thresholds, and the best AUROC over epochs") {
  TempDir tmp("calibrate");
  RunConfig c = small_config(tmp);
  c.train_limit = 200;
  c.val_fraction = 0.5;  // 100 held out
  c.fpr = 0.05;
  c.eval_every_epoch = true;
  train_run(c, tmp / "run", false);
  const json cal = read_json(tmp / "run/calibration.json");
  CHECK(cal["n_val"] == 100);
  CHECK(cal["epoch"] == 2);
  const std::vector<double> held = cal["scores_nll"].get<std::vector<double>>();
  REQUIRE(held.size() == 100);
  // The threshold reaches its target on the held-out normal images (5 of 100; distinct scores).
  CHECK(fraction_flagged(held, cal["threshold"].get<double>()) == 0.05);
  CHECK(cal["resolved"] == true);
  // The held-out images are the last 100 of the class's first 200 training images.
  const std::vector<int64_t> idx = cal["indices"].get<std::vector<int64_t>>();
  auto train = open_dataset(c.dataset, c.data_dir, Split::Train);
  int64_t seen = 0, first_held = -1;
  for (int64_t i = 0; i < train->size() && seen < 200; ++i)
    if (train->label(i) == 1 && seen++ == 100) first_held = i;
  CHECK(idx.front() == first_held);

  const json m = eval_run(tmp / "run", EvalOptions{});
  REQUIRE(m["thresholds"].contains("fpr"));
  CHECK(m["thresholds"]["fpr"]["value"] == cal["threshold"]);
  CHECK(m["thresholds"]["fpr"]["held_out_fpr"] == 0.05);
  CHECK(m["thresholds"]["f1"]["value"] == m["f1_threshold"]);
  CHECK(m["thresholds"]["f1"]["test"]["recall"] == m["f1_recall"]);
  // --eval-every-epoch: each log line has a test AUROC; the final one is eval's.
  std::ifstream log(tmp / "run/train_log.jsonl");
  std::string line;
  double best = 0, last = 0;
  while (std::getline(log, line)) {
    last = json::parse(line).at("test_auroc").get<double>();
    best = std::max(best, last);
  }
  CHECK(last == m["auroc"].get<double>());
  CHECK(m["auroc_max_over_epochs"].get<double>() == best);
  CHECK(m["auroc_max_epochs_tested"] == 2);
  // Another target, at eval time, from the stored scores.
  EvalOptions o;
  o.fpr = 0.1;
  CHECK(fraction_flagged(held, eval_run(tmp / "run", o)["thresholds"]["fpr"]["value"].get<double>()) == 0.1);
  // Too large a fraction holds out everything: refused.
  RunConfig bad = c;
  bad.val_fraction = 0.999;
  CHECK_THROWS_WITH_AS(train_run(bad, tmp / "bad", false), doctest::Contains("at least one must be held out and one left"),
                       Error);
}

TEST_CASE("predict: a run's test split gives exactly eval's scores, an exported model gives exactly the run's") {
  TempDir tmp("predict");
  RunConfig c = small_config(tmp);
  c.cache_f16 = true;    // predict rounds its tokens the same way
  c.test_limit = 600;    // more than two flow batches; extraction batches of 50 straddle them
  train_run(c, tmp / "run", false);
  eval_run(tmp / "run", EvalOptions{});
  const RunConfig cfg = read_run_config(tmp / "run");
  const FeatureSet test = load_features(cfg.features(Split::Test));
  auto flow = flows::Flow::from_file(tmp / "run/flow.safetensors");
  std::vector<int64_t> rows(600);
  for (int64_t i = 0; i < 600; ++i) rows[size_t(i)] = i;
  const Scores want = score_rows(*flow, test, rows, Device::CPU, "the test split");

  Detector d = open_run_detector(tmp / "run", Device::CPU);
  const Threshold t = choose_threshold(d.thresholds, "f1", {}, "run");
  auto ds = first_images(open_dataset(c.dataset, c.data_dir, Split::Test), 600);
  const std::vector<Prediction> got = predict_dataset(d, *ds, t);
  REQUIRE(got.size() == 600);
  int64_t same = 0;
  for (size_t i = 0; i < 600; ++i) same += got[i].scored && got[i].nll == want.nll[i] && got[i].z2 == want.z2[i];
  CHECK(same == 600);
  CHECK(got[0].input == "fashion-mnist:test:0");
  CHECK(got[0].label == "ankle-boot");
  for (const Prediction& p : got) {
    CHECK(p.anomalous == (p.nll >= t.value));
    CHECK(p.normalized == normalized_score(p.nll, t.value, t.lo, t.hi));
  }

  // Export, then predict from the file alone (the run directory renamed away): the same numbers.
  const ExportSummary s = export_model(tmp / "run", tmp / "model.safetensors");
  CHECK(s.thresholds == "f1");
  fs::rename(tmp / "run", tmp / "run-moved");
  Detector m = open_model_file(tmp / "model.safetensors", Device::CPU);
  CHECK(m.f16_tokens);
  CHECK(m.backbone_batch == 50);
  CHECK(m.thresholds == d.thresholds);
  const std::vector<Prediction> again = predict_dataset(m, *ds, choose_threshold(m.thresholds, "auto", {}, "model"));
  int64_t identical = 0;
  for (size_t i = 0; i < 600; ++i) identical += again[i].nll == got[i].nll && again[i].z2 == got[i].z2;
  CHECK(identical == 600);

  // The CSV and the JSON lines carry the same rows.
  write_predictions_csv(tmp / "p.csv", got, t);
  const std::string csv = read_file(tmp / "p.csv");
  CHECK(csv.rfind("input,index,label,score_nll,score_z2,score_normalized,threshold,verdict,map,error\n", 0) == 0);
  CHECK(std::count(csv.begin(), csv.end(), '\n') == 601);
  const json j = prediction_json(got[1], t);
  CHECK(j["verdict"] == (got[1].anomalous ? "anomalous" : "normal"));
  CHECK(j["score_nll"] == got[1].nll);
}

TEST_CASE("predict: image files and folders, corrupt images named or skipped with the reason") {
  TempDir tmp("predict_files");
  RunConfig c = small_config(tmp);
  c.epochs = 1;
  train_run(c, tmp / "run", false);
  auto ds = open_dataset(c.dataset, c.data_dir, Split::Test);
  fs::create_directories(tmp / "imgs/sub");
  for (int i = 0; i < 5; ++i) write_png(tmp / ("imgs/sub/b" + std::to_string(i) + ".png"), ds->image(i));
  write_png(tmp / "imgs/a.png", ds->image(5));
  sanf::testing::write_file(tmp / "imgs/.hidden.png", "not read");
  sanf::testing::write_file(tmp / "imgs/notes.txt", "not an image");
  auto files = open_image_files({tmp / "imgs", tmp / "imgs/sub/b0.png"});
  REQUIRE(files->size() == 7);
  CHECK(files->describe(0) == tmp / "imgs/a.png");
  CHECK(files->describe(1) == tmp / "imgs/sub/b0.png");
  CHECK(files->describe(6) == tmp / "imgs/sub/b0.png");
  CHECK(files->label(0) == -1);
  CHECK_THROWS_WITH_AS(open_image_files({tmp / "nowhere"}), doctest::Contains("nowhere: no such file"), Error);
  fs::create_directories(tmp / "empty");
  CHECK_THROWS_WITH_AS(open_image_files({tmp / "empty"}), doctest::Contains("no PNG or JPEG files"), Error);

  Detector d = open_run_detector(tmp / "run", Device::CPU);
  Threshold t;
  t.kind = "value";
  t.value = 1.0;
  PredictOptions o;
  o.progress = false;
  const std::vector<Prediction> p = predict(d, {{files.get(), ""}}, t, o);
  REQUIRE(p.size() == 7);
  CHECK(p[0].input == tmp / "imgs/a.png");
  CHECK(p[0].label.empty());
  // A file and its copy in another place score alike; the same image decoded from PNG scores as the dataset's.
  CHECK(p[1].nll == p[6].nll);
  auto first6 = first_images(open_dataset(c.dataset, c.data_dir, Split::Test), 6);
  const std::vector<Prediction> ref = predict(d, {{first6.get(), "fm"}}, t, o);
  CHECK(p[0].nll == doctest::Approx(ref[5].nll).epsilon(1e-5));

  // A corrupt file: an error naming it, or with skip_corrupt a row that says why.
  sanf::testing::write_file(tmp / "imgs/sub/b2.png", "\x89PNG\r\n\x1a\n truncated");
  auto broken = open_image_files({tmp / "imgs"});
  CHECK_THROWS_WITH_AS(predict(d, {{broken.get(), ""}}, t, o), doctest::Contains("b2.png"), Error);
  o.skip_corrupt = true;
  const std::vector<Prediction> q = predict(d, {{broken.get(), ""}}, t, o);
  REQUIRE(q.size() == 6);
  CHECK_FALSE(q[3].scored);
  CHECK(q[3].error.find("b2.png") != std::string::npos);
  CHECK(q[4].scored);
  CHECK(prediction_json(q[3], t)["verdict"] == "error");
  write_predictions_csv(tmp / "q.csv", q, t);
  CHECK(read_file(tmp / "q.csv").find(",error,") != std::string::npos);
}

TEST_CASE("predict: a bad model file is refused with what is wrong") {
  TempDir tmp("model_bad");
  RunConfig c = small_config(tmp);
  c.epochs = 1;
  train_run(c, tmp / "run", false);
  export_model(tmp / "run", tmp / "m.safetensors");
  SafetensorsFile f = SafetensorsFile::open(tmp / "m.safetensors");
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const TensorEntry& e : f.entries()) tensors.emplace_back(e.name, f.get(e.name));
  auto rewrite = [&](const std::string& name, std::map<std::string, std::string> meta,
                     std::vector<std::pair<std::string, Tensor>> t) {
    save_safetensors(tmp / name, t, meta);
    return tmp / name;
  };
  auto refused = [&](const std::string& path, const char* message) {
    CHECK_THROWS_WITH_AS(open_model_file(path, Device::CPU), doctest::Contains(message), Error);
  };
  auto meta = f.metadata();
  {
    auto m = meta;
    m["format"] = "sanf-features";
    refused(rewrite("a.safetensors", m, tensors), "not a sanf model (metadata format is 'sanf-features'");
  }
  {
    auto m = meta;
    m["format_version"] = "2";
    refused(rewrite("b.safetensors", m, tensors), "model format version 2 was written by a newer sanf");
  }
  {
    auto m = meta;
    m.erase("run.thresholds");
    refused(rewrite("c.safetensors", m, tensors), "no 'run.thresholds' in its metadata");
  }
  {
    auto m = meta;
    m["vit.dim"] = "64";  // a backbone the flow was not trained on
    refused(rewrite("d.safetensors", m, tensors), "not the backbone this flow was trained with");
  }
  {
    auto t = tensors;
    t.erase(std::find_if(t.begin(), t.end(), [](auto& e) { return e.first == "flow.layers.1.perm"; }));
    refused(rewrite("e.safetensors", meta, t), "layers.1.perm");
  }
  {
    auto t = tensors;
    t.emplace_back("extra.weight", zeros({2}));
    refused(rewrite("f.safetensors", meta, t), "unexpected tensor 'extra.weight'");
  }
  sanf::testing::write_file(tmp / "g.safetensors", "garbage");
  refused(tmp / "g.safetensors", "g.safetensors");
  CHECK_THROWS_WITH_AS(export_model(tmp / "nowhere", tmp / "h.safetensors"), doctest::Contains("not a run directory"),
                       Error);
  CHECK_FALSE(fs::exists(tmp / "h.safetensors"));
}
