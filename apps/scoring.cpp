// apps/scoring.cpp: scoring batches of tokens and the rows of a feature set (see apps/scoring.h).
#include "apps/scoring.h"

#include <algorithm>
#include <cmath>
#include <tuple>

#include "apps/interrupt.h"

namespace sanf::apps {

PendingScores launch_scores(flows::Flow& flow, const Tensor& y, const Tensor& P) {
  NoGradGuard no_grad;
  const flows::Flow::Output o = flow.forward(y, P);
  return {to(flows::nll(o), DType::F64), to(flows::mean_z2(o.z), DType::F64)};
}

void collect_scores(const PendingScores& pending, Scores& out, const std::function<std::string(size_t)>& describe) {
  const std::vector<double> a = pending.nll.to_vector(), z = pending.z2.to_vector();
  for (size_t k = 0; k < a.size(); ++k) {
    SANF_CHECK(std::isfinite(a[k]) && std::isfinite(z[k]), "the score of ", describe(k), " is not finite (nll ", a[k],
               ", z2 ", z[k], "): the flow produced non-finite output");
    out.nll.push_back(a[k]);
    out.z2.push_back(z[k]);
  }
}

Scores score_rows(flows::Flow& flow, const FeatureSet& features, const std::vector<int64_t>& rows, Device device,
                  const std::string& what, dist::Communicator& comm) {
  if (comm.size() > 1) {
    const dist::Part mine = dist::part(int64_t(rows.size()), kScoreBatch, comm.rank(), comm.size());
    const Scores part = score_rows(flow, features, std::vector<int64_t>(rows.begin() + mine.lo, rows.begin() + mine.hi),
                                   device, what);
    const auto n = int64_t(rows.size());
    Tensor all = Tensor::empty({2, n}, DType::F64);
    double* a = all.data<double>();
    std::fill(a, a + 2 * n, 0.0);
    std::copy(part.nll.begin(), part.nll.end(), a + mine.lo);
    std::copy(part.z2.begin(), part.z2.end(), a + n + mine.lo);
    comm.all_reduce_sum(all);
    return Scores{std::vector<double>(a, a + n), std::vector<double>(a + n, a + 2 * n)};
  }
  const auto n = int64_t(rows.size());
  Scores out;
  out.nll.reserve(rows.size());
  out.z2.reserve(rows.size());
  if (n == 0) return out;
  auto gather = [&](int64_t b0) {  // rows[b0 .. b0 + kScoreBatch), on the host
    const int64_t b = std::min(kScoreBatch, n - b0);
    return features.batch(std::vector<int64_t>(rows.begin() + b0, rows.begin() + b0 + b));
  };
  auto [host_y, host_P] = gather(0);
  for (int64_t b0 = 0; b0 < n; b0 += kScoreBatch) {
    check_interrupt(cat("while scoring ", what, " (", b0, "/", n, ")"));
    const PendingScores pending = launch_scores(flow, to(host_y, device), to(host_P, device));
    if (b0 + kScoreBatch < n) std::tie(host_y, host_P) = gather(b0 + kScoreBatch);  // while the device works
    collect_scores(pending, out, [&](size_t k) {
      return cat("image ", features.indices()[size_t(rows[size_t(b0) + k])], " of ", what);
    });
  }
  return out;
}

}  // namespace sanf::apps
