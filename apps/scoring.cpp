// apps/scoring.cpp: scoring batches of tokens and the rows of a feature set (see apps/scoring.h).
#include "apps/scoring.h"

#include <algorithm>
#include <cmath>
#include <optional>
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
  const auto n_all = int64_t(rows.size());
  // This rank's rows: its contiguous part cut at multiples of kScoreBatch (all of them in a world of one).
  const dist::Part mine = dist::part(n_all, kScoreBatch, comm.rank(), comm.size());
  const std::vector<int64_t> part(rows.begin() + mine.lo, rows.begin() + mine.hi);
  const auto n = int64_t(part.size());
  auto batches = [](int64_t k) { return (k + kScoreBatch - 1) / kScoreBatch; };
  // A set that some rank cannot read alone is read collectively (FeatureSet::batch with comm): every rank
  // then makes as many reads as the rank with the most batches, the extra ones empty.
  int64_t steps = batches(n);
  if (!features.all_local())
    for (int r = 0; r < comm.size(); ++r)
      steps = std::max(steps, batches(dist::part(n_all, kScoreBatch, r, comm.size()).size()));
  auto gather = [&](int64_t s) {  // this rank's batch s, on the host (empty past its part)
    const int64_t b0 = std::min(s * kScoreBatch, n), b = std::min(kScoreBatch, n - b0);
    return features.batch(std::vector<int64_t>(part.begin() + b0, part.begin() + b0 + b), comm);
  };
  Scores out;
  out.nll.reserve(part.size());
  out.z2.reserve(part.size());
  std::pair<Tensor, Tensor> host;
  if (steps > 0) host = gather(0);
  for (int64_t s = 0; s < steps; ++s) {
    const int64_t b0 = s * kScoreBatch;
    check_interrupt(cat("while scoring ", what, " (", std::min(b0, n), "/", n, ")"));
    std::optional<PendingScores> pending;
    if (b0 < n) pending = launch_scores(flow, to(host.first, device), to(host.second, device));
    if (s + 1 < steps) host = gather(s + 1);  // while the device works
    if (pending)
      collect_scores(*pending, out, [&](size_t k) {
        return cat("image ", features.indices()[size_t(part[size_t(b0) + k])], " of ", what);
      });
  }
  if (comm.size() == 1) return out;
  // Every rank's part put together on every rank: one all-reduce of a zero-filled buffer in which each rank
  // wrote its own part (adding zeros is exact).
  Tensor all = zeros({2, n_all}, DType::F64);
  double* a = all.data<double>();
  std::copy(out.nll.begin(), out.nll.end(), a + mine.lo);
  std::copy(out.z2.begin(), out.z2.end(), a + n_all + mine.lo);
  comm.all_reduce_sum(all);
  return Scores{std::vector<double>(a, a + n_all), std::vector<double>(a + n_all, a + 2 * n_all)};
}

}  // namespace sanf::apps
