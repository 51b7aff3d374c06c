// apps/thresholds.cpp: calibration.json, the thresholds eval reports, and choosing one for predict (see
// apps/thresholds.h).
#include "apps/thresholds.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fmt/format.h>
#include <numeric>

#include "apps/metrics.h"
#include "apps/run_dir.h"
#include "apps/scoring.h"

namespace sanf::apps {

namespace fs = std::filesystem;
using nlohmann::json;

std::optional<double> threshold_number(const std::string& text) {
  try {
    size_t used = 0;
    const double v = std::stod(text, &used);
    if (used == text.size() && std::isfinite(v)) return v;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

void write_calibration(const std::string& run_dir, flows::Flow& flow, const FeatureSet& train, int64_t n_train,
                       Device device, double fpr, double val_fraction, int64_t epoch, dist::Communicator& comm) {
  std::vector<int64_t> rows(static_cast<size_t>(train.size() - n_train));
  std::iota(rows.begin(), rows.end(), n_train);
  const Scores sc = score_rows(flow, train, rows, device, "the held-out normal images", comm);
  if (!comm.is_root()) return;
  const FprThreshold t = threshold_at_fpr(sc.nll, fpr);
  std::vector<int64_t> indices;
  for (int64_t r : rows) indices.push_back(train.indices()[size_t(r)]);
  write_json_file(run_file(run_dir, "calibration.json"),
                  json{{"epoch", epoch},
                       {"val_fraction", val_fraction},
                       {"n_val", int64_t(rows.size())},
                       {"fpr", fpr},
                       {"threshold", t.threshold},
                       {"fpr_reached", t.fpr_reached},
                       {"resolved", t.resolved},
                       {"indices", indices},
                       {"scores_nll", sc.nll},
                       {"scores_z2", sc.z2}});
  fmt::print(stderr, "calibration: threshold {:.6g} flags {:.4g} of {} held-out normal images (target {}){}\n",
             t.threshold, t.fpr_reached, rows.size(), fpr, t.resolved ? "" : "; too few images to resolve the target");
}

json read_calibration(const std::string& run_dir, int64_t flow_epoch) {
  const std::string path = run_file(run_dir, "calibration.json");
  if (!fs::exists(path)) return json();
  json j = read_json_file(path);
  SANF_CHECK(j.contains("scores_nll") && j.contains("fpr") && j.contains("epoch"), path,
             ": not a calibration file (scores_nll, fpr, epoch)");
  if (j.at("epoch").get<int64_t>() != flow_epoch) {
    fmt::print(stderr, "note: {} is from epoch {} but the flow is at epoch {}; left out (sanf train --resume "
               "recalibrates)\n", path, j.at("epoch").get<int64_t>(), flow_epoch);
    return json();
  }
  return j;
}

json eval_thresholds(const std::string& run_dir, const std::vector<double>& scores, const std::vector<int>& anomalous,
                     int64_t epoch, std::optional<double> fpr) {
  const auto [lo, hi] = std::minmax_element(scores.begin(), scores.end());
  auto at = [&](double t) {
    const Rates r = rates_at(scores, anomalous, t);
    return json{{"precision", r.precision}, {"recall", r.recall}, {"fpr", r.fpr}, {"tp", r.tp}, {"fp", r.fp},
                {"tn", r.tn}, {"fn", r.fn}};
  };
  const double f1 = f1_max(scores, anomalous).threshold;
  json out{{"f1", {{"value", f1}, {"lo", *lo}, {"hi", *hi}, {"flags_all", f1 <= *lo}, {"epoch", epoch},
                   {"test", at(f1)}}}};
  const json held = read_calibration(run_dir, epoch);
  if (!held.is_null()) {
    const FprThreshold t = threshold_at_fpr(held.at("scores_nll").get<std::vector<double>>(),
                                            fpr.value_or(held.at("fpr").get<double>()));
    out["fpr"] = {{"value", t.threshold}, {"target", t.fpr_target}, {"held_out_fpr", t.fpr_reached},
                  {"n_held_out", t.n}, {"resolved", t.resolved}, {"lo", t.lo}, {"hi", t.hi}, {"test", at(t.threshold)}};
  }
  return out;
}

json run_threshold_data(const std::string& run_dir) {
  const std::string ckpt = run_file(run_dir, "flow.safetensors");
  SANF_CHECK(fs::exists(ckpt), run_dir, ": no flow.safetensors (no training epoch has completed)");
  const int64_t epoch = checkpoint_epoch(ckpt);
  json data = json::object();
  const json held = read_calibration(run_dir, epoch);
  if (!held.is_null()) data["calibration"] = {{"fpr", held.at("fpr")}, {"scores_nll", held.at("scores_nll")}};
  const std::string metrics = run_file(run_dir, "metrics.json");
  if (fs::exists(metrics)) {
    const json m = read_json_file(metrics);
    if (m.contains("thresholds") && m["thresholds"].contains("f1")) {
      const json& f1 = m["thresholds"]["f1"];
      if (f1.value("epoch", int64_t(-1)) == epoch)
        data["f1"] = {{"value", f1.at("value")}, {"lo", f1.at("lo")}, {"hi", f1.at("hi")}, {"flags_all", f1.at("flags_all")}};
      else
        fmt::print(stderr, "note: {} is from another epoch than the flow ({}); its F1 threshold is left out "
                   "(run sanf eval again)\n", metrics, epoch);
    }
  }
  return data;
}

Threshold choose_threshold(const json& data, const std::string& kind, std::optional<double> fpr,
                           const std::string& source) {
  const bool has_fpr = data.contains("calibration"), has_f1 = data.contains("f1");
  Threshold t;
  if (const std::optional<double> v = threshold_number(kind)) {
    // A given value, normalised over the range of whichever calibration the run has.
    t.kind = "value";
    t.value = *v;
    t.note = "given";
    if (has_fpr || has_f1) {
      const Threshold ref = choose_threshold(data, has_fpr ? "fpr" : "f1", fpr, source);
      t.lo = ref.lo, t.hi = ref.hi;
    }
    return t;
  }
  const std::string want = kind == "auto" ? (has_fpr ? "fpr" : "f1") : kind;
  t.kind = want;
  if (want == "fpr") {
    SANF_CHECK(has_fpr, source, ": no held-out normal scores to calibrate a false-alarm threshold on (train with "
               "--val-fraction F, e.g. 0.1); or use --threshold f1 or a number");
    const json& c = data.at("calibration");
    const FprThreshold f = threshold_at_fpr(c.at("scores_nll").get<std::vector<double>>(),
                                            fpr.value_or(c.at("fpr").get<double>()));
    t.value = f.threshold, t.lo = f.lo, t.hi = f.hi;
    t.note = cat("flags ", f.fpr_reached, " of ", f.n, " held-out normal images (target ", f.fpr_target, ")",
                 f.resolved ? "" : "; too few held-out images to resolve the target");
    return t;
  }
  SANF_CHECK(want == "f1", "unknown threshold kind '", kind, "' (auto, fpr, f1, or a number)");
  SANF_CHECK(has_f1, source, ": no F1 threshold (run sanf eval first, which chooses it on the test split) and no "
             "held-out scores (train with --val-fraction F); or give --threshold a number");
  const json& f = data.at("f1");
  SANF_CHECK(!f.at("flags_all").get<bool>(), source, ": the F1-max threshold (", f.at("value").get<double>(),
             ") flags every test image as anomalous: F1-max chose 'everything is anomalous', which is no decision "
             "threshold. Train with --val-fraction F for a threshold from normal images, or give --threshold a number");
  t.value = f.at("value"), t.lo = f.at("lo"), t.hi = f.at("hi");
  t.note = "F1-max on the test split (chosen with its labels: optimistic)";
  return t;
}

}  // namespace sanf::apps
