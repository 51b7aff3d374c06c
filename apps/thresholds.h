// apps/thresholds.h: decision thresholds on the NLL score (a score >= threshold is anomalous): the held-out
// calibration `sanf train --val-fraction` writes, the thresholds `sanf eval` reports, and the one `sanf
// predict` uses. The math (threshold_at_fpr, rates_at, normalized_score) is apps/metrics.h's; the decisions
// are in docs/DESIGN.md ("Deployment").
//
// calibration.json (in a run directory): epoch, val_fraction, n_val, fpr (the target), threshold,
// fpr_reached, resolved, indices (the held-out images' dataset indices), scores_nll, scores_z2.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "apps/features.h"
#include "flows/flow.h"

namespace sanf::apps {

// Scores the held-out rows [n_train, train.size()) with the trained flow and writes RUN/calibration.json
// with the threshold for target `fpr`; prints one line saying what it reaches. With several ranks every rank
// calls it and they score the rows together (score_rows); rank 0 alone writes and prints.
void write_calibration(const std::string& run_dir, flows::Flow& flow, const FeatureSet& train, int64_t n_train,
                       Device device, double fpr, double val_fraction, int64_t epoch,
                       dist::Communicator& comm = dist::Communicator::self());

// RUN/calibration.json, or null when there is none; one from another epoch than the flow's (`flow_epoch`)
// is left out with a note on stderr (sanf train --resume recalibrates).
nlohmann::json read_calibration(const std::string& run_dir, int64_t flow_epoch);

// metrics.json's "thresholds": "f1" (F1-max on the test scores: value, lo, hi, flags_all, epoch) and, when
// the run has a calibration, "fpr" (at target `fpr`, default the stored one: value, target, held_out_fpr,
// n_held_out, resolved, lo, hi); each with "test", the precision, recall, FPR and counts it reaches on
// `scores` (anomalous = 1).
nlohmann::json eval_thresholds(const std::string& run_dir, const std::vector<double>& scores,
                               const std::vector<int>& anomalous, int64_t epoch, std::optional<double> fpr);

// A threshold on the NLL score (apps/metrics.h: anomalous when score >= value) and where it came from; lo
// and hi are the lowest and highest score of the data it was calibrated on (for normalized_score).
struct Threshold {
  std::string kind;  // "fpr" (held-out normal images), "f1" (F1-max on the test split) or "value" (given)
  double value = 0, lo = 0, hi = 0;
  std::string note;  // how it was obtained, e.g. "1% of 600 held-out normal images flagged"
};

// `text` as a threshold value when the whole of it is one finite number (e.g. "812.5", "-3e2").
std::optional<double> threshold_number(const std::string& text);

// What a run knows for choosing a threshold, as one JSON object (also embedded in exported models):
//   "calibration": {"fpr", "scores_nll": [...]}   from calibration.json (train --val-fraction)
//   "f1": {"value", "lo", "hi", "flags_all"}       from metrics.json (sanf eval); flags_all: the F1-max
//                                                  threshold calls every test image anomalous
// Either may be missing.
nlohmann::json run_threshold_data(const std::string& run_dir);

// The threshold `kind` names, from run_threshold_data's object: "fpr" (recomputed from the held-out scores at
// `fpr`, default the stored target), "f1", "auto" (fpr when there are held-out scores, else f1), or a number
// (kind "value"; normalised over the held-out range, else the test split's, else every score is 0.5).
// `source` names the run or model in errors, which say what to do when the kind is missing. A degenerate
// F1 threshold (flags_all: F1-max picks "everything is anomalous" when the detector cannot tell the
// classes apart and anomalies dominate the test split) is refused rather than used.
Threshold choose_threshold(const nlohmann::json& data, const std::string& kind, std::optional<double> fpr,
                           const std::string& source);

}  // namespace sanf::apps
