// tests/apps/test_metrics.cpp: AUROC, ROC, AP and F1max against cases worked out by hand (the arithmetic is
// in the comments) and against brute-force O(n^2) definitions on random data with many ties.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <random>
#include <set>

#include "apps/metrics.h"
#include "core/error.h"

using namespace sanf;
using namespace sanf::apps;

namespace {

// The trapezoid area under a ROC curve.
double trapezoid_area(const RocCurve& roc) {
  double area = 0;
  for (size_t k = 1; k < roc.fpr.size(); ++k)
    area += (roc.fpr[k] - roc.fpr[k - 1]) * (roc.tpr[k] + roc.tpr[k - 1]) / 2;
  return area;
}

// AUROC by its definition: every (anomalous, normal) pair, a win counts 1 and a tie 1/2.
double auroc_pairs(const std::vector<double>& s, const std::vector<int>& y) {
  int64_t twice_u = 0, pos = 0, neg = 0;
  for (size_t i = 0; i < s.size(); ++i) (y[i] ? pos : neg)++;
  for (size_t i = 0; i < s.size(); ++i)
    for (size_t j = 0; j < s.size(); ++j)
      if (y[i] == 1 && y[j] == 0) twice_u += s[i] > s[j] ? 2 : s[i] == s[j] ? 1 : 0;
  return double(twice_u) / (2.0 * double(pos) * double(neg));
}

// TP and FP at threshold t (score >= t), by a scan.
std::pair<int64_t, int64_t> counts_at(const std::vector<double>& s, const std::vector<int>& y, double t) {
  int64_t tp = 0, fp = 0;
  for (size_t i = 0; i < s.size(); ++i)
    if (s[i] >= t) (y[i] ? tp : fp)++;
  return {tp, fp};
}

// AP and F1max by scanning every distinct score as a threshold, from the highest down.
double ap_scan(const std::vector<double>& s, const std::vector<int>& y) {
  int64_t pos = 0;
  for (int v : y) pos += v;
  std::set<double, std::greater<>> thresholds(s.begin(), s.end());
  double ap = 0, prev_recall = 0;
  for (double t : thresholds) {
    auto [tp, fp] = counts_at(s, y, t);
    const double recall = double(tp) / double(pos), precision = double(tp) / double(tp + fp);
    ap += (recall - prev_recall) * precision;
    prev_recall = recall;
  }
  return ap;
}

double f1_scan(const std::vector<double>& s, const std::vector<int>& y) {
  int64_t pos = 0;
  for (int v : y) pos += v;
  double best = 0;
  for (double t : std::set<double>(s.begin(), s.end())) {
    auto [tp, fp] = counts_at(s, y, t);
    best = std::max(best, 2.0 * double(tp) / double(2 * tp + fp + (pos - tp)));
  }
  return best;
}

}  // namespace

TEST_CASE("metrics: AUROC on hand-worked cases") {
  // Perfect separation: every anomalous score (0.9, 1.0) beats every normal one (0.1, 0.2, 0.3):
  // U = 2 * 3 = 6 wins out of 6 pairs -> 1.
  CHECK(auroc({0.1, 0.2, 0.3, 0.9, 1.0}, {0, 0, 0, 1, 1}) == 1.0);
  // Perfect inversion: the same scores with the labels swapped: 0 wins out of 6 pairs -> 0.
  CHECK(auroc({0.1, 0.2, 0.3, 0.9, 1.0}, {1, 1, 1, 0, 0}) == 0.0);
  // All tied: 2 anomalous x 2 normal = 4 pairs, each a tie worth 1/2 -> 2 / 4 = 0.5.
  CHECK(auroc({0.5, 0.5, 0.5, 0.5}, {0, 1, 0, 1}) == 0.5);
  // Ties across classes: scores {0.1, 0.4, 0.4, 0.8}, labels {0, 0, 1, 1}.
  // Pairs (anomalous, normal): (0.4, 0.1) win 1, (0.4, 0.4) tie 1/2, (0.8, 0.1) win 1, (0.8, 0.4) win 1:
  // U = 3.5 of 4 pairs -> 0.875. By ranks: 0.1 -> 1, the two 0.4 -> (2 + 3) / 2 = 2.5, 0.8 -> 4;
  // anomalous rank sum R = 2.5 + 4 = 6.5, U = R - n_pos (n_pos + 1) / 2 = 6.5 - 3 = 3.5.
  CHECK(auroc({0.1, 0.4, 0.4, 0.8}, {0, 0, 1, 1}) == 0.875);
  // sklearn's roc_auc_score example: scores {0.1, 0.4, 0.35, 0.8}, labels {0, 0, 1, 1}:
  // 0.35 beats 0.1 but not 0.4; 0.8 beats both: 3 of 4 -> 0.75.
  CHECK(auroc({0.1, 0.4, 0.35, 0.8}, {0, 0, 1, 1}) == 0.75);
  // Order of the samples does not matter, and -0.0 ties with 0.0 (one pair, a tie -> 0.5).
  CHECK(auroc({0.8, 0.4, 0.1, 0.4}, {1, 1, 0, 0}) == 0.875);
  CHECK(auroc({-0.0, 0.0}, {0, 1}) == 0.5);
}

TEST_CASE("metrics: ROC curve points, and its trapezoid area is the AUROC") {
  // Scores {0.1, 0.4, 0.4, 0.8}, labels {0, 0, 1, 1}; thresholds +inf, 0.8, 0.4, 0.1:
  //   >= 0.8: TP 1, FP 0 -> (0, 0.5);  >= 0.4: TP 2, FP 1 -> (0.5, 1);  >= 0.1: TP 2, FP 2 -> (1, 1).
  // Area: (0 -> 0) 0 + (0 -> 0.5) 0.5 * (0.5 + 1) / 2 = 0.375 + (0.5 -> 1) 0.5 * 1 = 0.5; total 0.875.
  RocCurve roc = roc_curve({0.1, 0.4, 0.4, 0.8}, {0, 0, 1, 1});
  CHECK(roc.fpr == std::vector<double>{0, 0, 0.5, 1});
  CHECK(roc.tpr == std::vector<double>{0, 0.5, 1, 1});
  REQUIRE(roc.thresholds.size() == 4);
  CHECK(std::isinf(roc.thresholds[0]));
  CHECK(roc.thresholds[1] == 0.8);
  CHECK(roc.thresholds[2] == 0.4);
  CHECK(roc.thresholds[3] == 0.1);
  CHECK(trapezoid_area(roc) == 0.875);
}

TEST_CASE("metrics: average precision and F1max on hand-worked cases") {
  // Scores {0.1, 0.4, 0.4, 0.8}, labels {0, 0, 1, 1}:
  //   >= 0.8: TP 1, FP 0: P = 1,   R = 0.5
  //   >= 0.4: TP 2, FP 1: P = 2/3, R = 1
  //   >= 0.1: TP 2, FP 2: P = 1/2, R = 1 (recall does not rise: no weight)
  // AP = (0.5 - 0) * 1 + (1 - 0.5) * 2/3 = 5/6.
  // F1 = 2 TP / (2 TP + FP + FN): 2 / (2 + 0 + 1) = 2/3; 4 / (4 + 1 + 0) = 0.8; 4 / (4 + 2 + 0) = 2/3.
  // Best: 0.8 at t = 0.4, P = 2/3, R = 1.
  const std::vector<double> s = {0.1, 0.4, 0.4, 0.8};
  const std::vector<int> y = {0, 0, 1, 1};
  CHECK(average_precision(s, y) == doctest::Approx(5.0 / 6).epsilon(1e-15));
  F1Max f = f1_max(s, y);
  CHECK(f.f1 == doctest::Approx(0.8).epsilon(1e-15));
  CHECK(f.threshold == 0.4);
  CHECK(f.precision == doctest::Approx(2.0 / 3).epsilon(1e-15));
  CHECK(f.recall == 1.0);

  // sklearn's average_precision_score example: scores {0.1, 0.4, 0.35, 0.8}, labels {0, 0, 1, 1}:
  //   >= 0.8: P 1, R 0.5;  >= 0.4: P 1/2, R 0.5 (no rise);  >= 0.35: P 2/3, R 1;  AP = 0.5 + 0.5 * 2/3 = 0.8333.
  CHECK(average_precision({0.1, 0.4, 0.35, 0.8}, {0, 0, 1, 1}) == doctest::Approx(5.0 / 6).epsilon(1e-15));
  // Perfect separation: precision is 1 at every rise of recall -> AP 1, F1 1.
  CHECK(average_precision({0.1, 0.2, 0.9, 1.0}, {0, 0, 1, 1}) == 1.0);
  CHECK(f1_max({0.1, 0.2, 0.9, 1.0}, {0, 0, 1, 1}).f1 == 1.0);
  // All tied: one threshold, everything predicted anomalous: P = 2/4, R = 1; AP = 1 * 1/2;
  // F1 = 4 / (4 + 2 + 0) = 2/3.
  CHECK(average_precision({3, 3, 3, 3}, {0, 1, 0, 1}) == 0.5);
  CHECK(f1_max({3, 3, 3, 3}, {0, 1, 0, 1}).f1 == doctest::Approx(2.0 / 3).epsilon(1e-15));
  // Equal F1 at two thresholds: scores {4, 3, 2, 1}, labels {1, 0, 0, 1}:
  //   >= 4: 2 / (2 + 0 + 1) = 2/3;  >= 3: 2/4;  >= 2: 2/5;  >= 1: 4 / (4 + 2 + 0) = 2/3.
  // The higher threshold is kept: t = 4, P = 1, R = 1/2.
  f = f1_max({4, 3, 2, 1}, {1, 0, 0, 1});
  CHECK(f.f1 == doctest::Approx(2.0 / 3).epsilon(1e-15));
  CHECK(f.threshold == 4);
  CHECK(f.precision == 1.0);
  CHECK(f.recall == 0.5);
}

TEST_CASE("metrics: agree with brute force on random data with many ties") {
  std::mt19937 gen(1234);
  for (int trial = 0; trial < 20; ++trial) {
    const int n = 50 + trial * 20;
    const int levels = 2 + trial;  // few distinct scores: many ties, within and across classes
    std::uniform_int_distribution<int> score(0, levels - 1), label(0, 1);
    std::vector<double> s(n);
    std::vector<int> y(n);
    for (int i = 0; i < n; ++i) {
      y[i] = label(gen);
      s[i] = 0.25 * score(gen) + 0.5 * y[i] * (trial % 3);  // some signal in 2 of 3 trials
    }
    y[0] = 0;
    y[1] = 1;  // both classes present
    CAPTURE(trial);
    CHECK(auroc(s, y) == auroc_pairs(s, y));  // both exact: the same integer over the same integer
    RocCurve roc = roc_curve(s, y);
    CHECK(roc.fpr.size() == std::set<double>(s.begin(), s.end()).size() + 1);
    CHECK(roc.fpr.back() == 1.0);
    CHECK(roc.tpr.back() == 1.0);
    CHECK(trapezoid_area(roc) == doctest::Approx(auroc(s, y)).epsilon(1e-13));
    CHECK(average_precision(s, y) == doctest::Approx(ap_scan(s, y)).epsilon(1e-13));
    F1Max f = f1_max(s, y);
    CHECK(f.f1 == doctest::Approx(f1_scan(s, y)).epsilon(1e-15));
    auto [tp, fp] = counts_at(s, y, f.threshold);
    CHECK(f.precision == doctest::Approx(double(tp) / double(tp + fp)));
    CHECK(f.f1 == doctest::Approx(2 * f.precision * f.recall / (f.precision + f.recall)));
  }
}

TEST_CASE("metrics: bad input gives errors naming the function and the problem") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  CHECK_THROWS_WITH_AS(auroc({0.1, 0.2, 0.3}, {0, 1}), doctest::Contains("auroc: 3 scores but 2 labels"), Error);
  CHECK_THROWS_WITH_AS(auroc({}, {}), doctest::Contains("auroc: no samples"), Error);
  CHECK_THROWS_WITH_AS(auroc({0.1, 0.2, 0.3}, {0, 0, 0}),
                       doctest::Contains("auroc: all 3 labels are 0 (normal); both classes are needed"), Error);
  CHECK_THROWS_WITH_AS(roc_curve({0.1, 0.2}, {1, 1}), doctest::Contains("roc_curve: all 2 labels are 1"), Error);
  CHECK_THROWS_WITH_AS(auroc({0.1, nan, 0.3, nan}, {0, 1, 0, 1}),
                       doctest::Contains("auroc: 2 of 4 scores are NaN (first at index 1)"), Error);
  CHECK_THROWS_WITH_AS(average_precision({0.1, 0.2, -inf}, {0, 1, 0}),
                       doctest::Contains("average_precision: 1 of 3 scores are infinite (first at index 2: -inf)"),
                       Error);
  CHECK_THROWS_WITH_AS(f1_max({0.1, 0.2}, {0, 2}),
                       doctest::Contains("f1_max: label at index 1 is 2; labels must be 0 (normal) or 1"), Error);
}
