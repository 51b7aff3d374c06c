// apps/metrics.h: how well anomaly scores separate normal from anomalous samples.
//
// Every function takes per-sample `scores` (higher = more anomalous) and `labels` (1 = anomalous = the
// positive class, 0 = normal). A sample is predicted anomalous at threshold t when score >= t, so samples
// with equal scores always fall on the same side of a threshold ("ties grouped"). All results are exact:
// no sampling, no interpolation. Inputs are validated first: equal lengths, labels 0/1, both classes present,
// no NaN or infinite score; otherwise a sanf::Error names the function and the problem, e.g.
//   "auroc: 3 of 1000 scores are NaN (first at index 17)".
//
// Definitions (n_pos anomalous and n_neg normal samples; TP(t), FP(t) = anomalous / normal samples with
// score >= t; thresholds t_1 > t_2 > ... the distinct scores, from the highest down):
//   AUROC  = U / (n_pos n_neg), U = #{(p, n): s_p > s_n} + 0.5 #{(p, n): s_p == s_n} over anomalous p and
//            normal n (Mann-Whitney U, ties counted half): the probability that a random anomalous sample
//            scores above a random normal one. 1 = perfect, 0.5 = chance, 0 = perfectly inverted.
//   ROC    = the points (FPR, TPR) = (FP(t) / n_neg, TP(t) / n_pos) for t = +inf, t_1, t_2, ...; its trapezoid
//            area is AUROC exactly (a tie group is a diagonal segment, whose trapezoid counts its pairs half).
//   AP     = sum_k (R_k - R_{k-1}) P_k with P_k = TP(t_k) / (TP(t_k) + FP(t_k)), R_k = TP(t_k) / n_pos,
//            R_0 = 0: sklearn's average_precision_score (a step-wise area under the precision-recall curve,
//            no linear interpolation, which would be optimistic).
//   F1max  = max over t_k of F1 = 2 P R / (P + R) = 2 TP / (2 TP + FP + FN).
//
// Decision thresholds (a score >= t is called anomalous, as above):
//   threshold_at_fpr  from NORMAL scores only (no labels): the threshold that flags at most a fraction `fpr`
//                     of them. With the scores sorted ascending v_1 <= ... <= v_n and k = floor(fpr n) the
//                     number that may be flagged, t lies just above c = v_(n-k), the highest score that must
//                     not be flagged: halfway to the next larger score, or (when c is the largest)
//                     nextafter(c, +inf). Ties are never split, so the fraction flagged is <= fpr, and it is
//                     exactly k / n when v_(n-k) < v_(n-k+1). With n < 1 / fpr no score may be flagged (k = 0)
//                     and the threshold is just above the largest: `resolved` says whether n >= 1 / fpr.
//   rates_at          precision, recall (TPR) and false-positive rate reached at a given threshold.
//   normalized_score  anomalib's min-max normalisation around a threshold: (s - t) / (hi - lo) + 0.5, clipped
//                     to [0, 1], so 0.5 is the threshold; lo and hi are the lowest and highest score of the
//                     data the threshold was calibrated on (0.5 for every score when hi == lo).
#pragma once

#include <cstdint>
#include <vector>

namespace sanf::apps {

double auroc(const std::vector<double>& scores, const std::vector<int>& labels);

struct RocCurve {
  // One point per distinct score, from the highest threshold down, after a first point (0, 0) whose
  // threshold is +infinity (nothing predicted anomalous). The last point is (1, 1).
  std::vector<double> fpr, tpr, thresholds;
};
RocCurve roc_curve(const std::vector<double>& scores, const std::vector<int>& labels);

double average_precision(const std::vector<double>& scores, const std::vector<int>& labels);

struct F1Max {
  double f1 = 0;         // the best F1 over all thresholds
  double threshold = 0;  // the highest threshold t reaching it (predict anomalous when score >= t)
  double precision = 0, recall = 0;  // at that threshold
};
F1Max f1_max(const std::vector<double>& scores, const std::vector<int>& labels);

struct FprThreshold {
  double threshold = 0;
  double fpr_target = 0;
  double fpr_reached = 0;  // the fraction of the given normal scores >= threshold
  int64_t n = 0;           // normal scores it was calibrated on
  bool resolved = false;   // n >= 1 / fpr_target: the target is reachable at all
  double lo = 0, hi = 0;   // the lowest and highest of those scores (for normalized_score)
};
// normal_scores: finite, at least one; fpr in [0, 1). Throws naming the problem.
FprThreshold threshold_at_fpr(const std::vector<double>& normal_scores, double fpr);

struct Rates {
  int64_t tp = 0, fp = 0, tn = 0, fn = 0;
  double precision = 0;  // tp / (tp + fp); 0 when nothing is flagged
  double recall = 0;     // tp / (tp + fn), the true-positive rate
  double fpr = 0;        // fp / (fp + tn)
};
// Both classes needed, as for the metrics above.
Rates rates_at(const std::vector<double>& scores, const std::vector<int>& labels, double threshold);

double normalized_score(double score, double threshold, double lo, double hi);

}  // namespace sanf::apps
