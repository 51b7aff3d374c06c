// apps/metrics.cpp: AUROC, ROC curve, average precision and best F1 (definitions in metrics.h).
//
// Everything is O(n log n): one sort, then one pass over the groups of equal scores. Counts are kept as
// integers and divided once at the end, so results do not depend on summation order.
#include "apps/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>

#include "core/error.h"

namespace sanf::apps {

namespace {

struct ClassCounts {
  int64_t pos = 0, neg = 0;
};

// The checks every metric shares; `what` is the calling function's name, for the message.
ClassCounts validate(const char* what, const std::vector<double>& scores, const std::vector<int>& labels) {
  const size_t n = scores.size();
  SANF_CHECK(labels.size() == n, what, ": ", n, " scores but ", labels.size(), " labels");
  SANF_CHECK(n > 0, what, ": no samples");
  int64_t nan = 0, inf = 0;
  size_t first_nan = 0, first_inf = 0;
  ClassCounts c;
  for (size_t i = 0; i < n; ++i) {
    if (std::isnan(scores[i])) {
      if (nan++ == 0) first_nan = i;
    } else if (std::isinf(scores[i])) {
      if (inf++ == 0) first_inf = i;
    }
    SANF_CHECK(labels[i] == 0 || labels[i] == 1, what, ": label at index ", i, " is ", labels[i],
               "; labels must be 0 (normal) or 1 (anomalous)");
    (labels[i] == 1 ? c.pos : c.neg)++;
  }
  SANF_CHECK(nan == 0, what, ": ", nan, " of ", n, " scores are NaN (first at index ", first_nan, ")");
  SANF_CHECK(inf == 0, what, ": ", inf, " of ", n, " scores are infinite (first at index ", first_inf, ": ",
             scores[first_inf], ")");
  SANF_CHECK(c.pos > 0 && c.neg > 0, what, ": all ", n, " labels are ", (c.pos > 0 ? "1 (anomalous)" : "0 (normal)"),
             "; both classes are needed");
  return c;
}

// One group of equal scores, and the running totals after it (scores visited from the highest down).
struct Group {
  double score = 0;
  int64_t pos = 0, neg = 0;  // anomalous / normal samples in this group
  int64_t tp = 0, fp = 0;    // anomalous / normal samples with score >= this group's score
};

std::vector<Group> groups_descending(const std::vector<double>& scores, const std::vector<int>& labels) {
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  std::vector<Group> groups;
  int64_t tp = 0, fp = 0;
  for (size_t i = 0; i < order.size();) {
    Group g;
    g.score = scores[order[i]];
    for (; i < order.size() && scores[order[i]] == g.score; ++i) (labels[order[i]] == 1 ? g.pos : g.neg)++;
    tp += g.pos;
    fp += g.neg;
    g.tp = tp;
    g.fp = fp;
    groups.push_back(g);
  }
  return groups;
}

}  // namespace

double auroc(const std::vector<double>& scores, const std::vector<int>& labels) {
  const ClassCounts c = validate("auroc", scores, labels);
  // Rank all samples by score, ascending, from 1; tied samples share the average of their ranks. Then
  // U = (sum of the anomalous samples' ranks) - n_pos (n_pos + 1) / 2 (Mann-Whitney).
  // A tie group at sorted positions [i, j) (0-based) holds ranks i+1 .. j, whose average is (i + 1 + j) / 2:
  // we sum twice the ranks so that everything stays an integer.
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  int64_t twice_rank_sum = 0;
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    int64_t pos_in_group = 0;
    for (; j < order.size() && scores[order[j]] == scores[order[i]]; ++j) pos_in_group += labels[order[j]];
    twice_rank_sum += pos_in_group * int64_t(i + 1 + j);
    i = j;
  }
  const int64_t twice_u = twice_rank_sum - c.pos * (c.pos + 1);
  return double(twice_u) / (2.0 * double(c.pos) * double(c.neg));
}

RocCurve roc_curve(const std::vector<double>& scores, const std::vector<int>& labels) {
  const ClassCounts c = validate("roc_curve", scores, labels);
  RocCurve roc;
  roc.fpr.push_back(0);
  roc.tpr.push_back(0);
  roc.thresholds.push_back(std::numeric_limits<double>::infinity());
  for (const Group& g : groups_descending(scores, labels)) {
    roc.fpr.push_back(double(g.fp) / double(c.neg));
    roc.tpr.push_back(double(g.tp) / double(c.pos));
    roc.thresholds.push_back(g.score);
  }
  return roc;
}

double average_precision(const std::vector<double>& scores, const std::vector<int>& labels) {
  const ClassCounts c = validate("average_precision", scores, labels);
  // Recall rises by g.pos / n_pos at each group; weight that rise by the precision there.
  double ap = 0;
  for (const Group& g : groups_descending(scores, labels))
    if (g.pos > 0) ap += double(g.pos) / double(c.pos) * (double(g.tp) / double(g.tp + g.fp));
  return ap;
}

F1Max f1_max(const std::vector<double>& scores, const std::vector<int>& labels) {
  const ClassCounts c = validate("f1_max", scores, labels);
  F1Max best;
  best.f1 = -1;
  for (const Group& g : groups_descending(scores, labels)) {
    const int64_t fn = c.pos - g.tp;
    const double f1 = 2.0 * double(g.tp) / double(2 * g.tp + g.fp + fn);
    if (f1 > best.f1) {  // strictly better: on a tie the higher threshold stays
      best.f1 = f1;
      best.threshold = g.score;
      best.precision = double(g.tp) / double(g.tp + g.fp);
      best.recall = double(g.tp) / double(c.pos);
    }
  }
  return best;
}

FprThreshold threshold_at_fpr(const std::vector<double>& normal_scores, double fpr) {
  SANF_CHECK(fpr >= 0 && fpr < 1, "threshold_at_fpr: the target false-positive rate must be in [0, 1), got ", fpr);
  SANF_CHECK(!normal_scores.empty(), "threshold_at_fpr: no normal scores to calibrate on");
  for (size_t i = 0; i < normal_scores.size(); ++i)
    SANF_CHECK(std::isfinite(normal_scores[i]), "threshold_at_fpr: normal score ", i, " is ", normal_scores[i]);
  std::vector<double> v = normal_scores;
  std::sort(v.begin(), v.end());
  const auto n = int64_t(v.size());
  const auto k = int64_t(std::floor(fpr * double(n) + 1e-9));  // (1e-9: 0.01 * 300 is 2.9999999999999996)
  const double c = v[size_t(n - 1 - k)];                         // the highest score that must not be flagged
  const auto above = std::upper_bound(v.begin(), v.end(), c);
  FprThreshold t;
  t.threshold = above == v.end() ? std::nextafter(c, std::numeric_limits<double>::infinity()) : c + (*above - c) / 2;
  if (above != v.end() && t.threshold <= c) t.threshold = *above;  // adjacent doubles: no midpoint between them
  t.fpr_target = fpr;
  t.fpr_reached = double(v.end() - std::lower_bound(v.begin(), v.end(), t.threshold)) / double(n);
  t.n = n;
  t.resolved = fpr > 0 && double(n) * fpr >= 1.0 - 1e-9;
  t.lo = v.front();
  t.hi = v.back();
  return t;
}

Rates rates_at(const std::vector<double>& scores, const std::vector<int>& labels, double threshold) {
  validate("rates_at", scores, labels);
  Rates r;
  for (size_t i = 0; i < scores.size(); ++i) {
    const bool flagged = scores[i] >= threshold;
    if (labels[i] == 1) (flagged ? r.tp : r.fn)++;
    else (flagged ? r.fp : r.tn)++;
  }
  r.precision = r.tp + r.fp > 0 ? double(r.tp) / double(r.tp + r.fp) : 0.0;
  r.recall = double(r.tp) / double(r.tp + r.fn);
  r.fpr = double(r.fp) / double(r.fp + r.tn);
  return r;
}

double normalized_score(double score, double threshold, double lo, double hi) {
  if (!(hi > lo)) return 0.5;
  return std::clamp((score - threshold) / (hi - lo) + 0.5, 0.0, 1.0);
}

}  // namespace sanf::apps
