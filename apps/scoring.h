// apps/scoring.h: the flow's anomaly scores for batches of tokens, shared by `sanf eval`, the held-out
// calibration and per-epoch evaluation of `sanf train`, and `sanf predict`.
//
// Two scores per image (flows/flow.h): the NLL 0.5 ||z||^2 - log|det J| (without the constant; the default
// score) and mean(z^2) (the authors' code). Scoring runs without autograd in batches of kScoreBatch rows.
// A batch's size can change the order of the GEMMs' sums, so every path that must give the same numbers
// for the same images (eval and predict) cuts batches at the same multiples of kScoreBatch.
//
// Scoring a batch is two calls, so that on a GPU the host can prepare the next batch in between:
// launch_scores queues the flow (kernel launches return at once on CUDA) and collect_scores waits for the
// scores, checks them and appends them.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "apps/features.h"
#include "dist/dist.h"
#include "flows/flow.h"

namespace sanf::apps {

constexpr int64_t kScoreBatch = 256;

struct Scores {
  std::vector<double> nll, z2;
  size_t size() const { return nll.size(); }
};

struct PendingScores {
  Tensor nll, z2;  // (B) f64 on the flow's device
};
// y (B, D), P (B, N, D) (undefined for a no-CAFF flow) on the flow's device.
PendingScores launch_scores(flows::Flow& flow, const Tensor& y, const Tensor& P);
// Appends the batch's scores to `out`. A non-finite score is an error naming describe(k), the batch's k-th
// image ("image 17 of the test split").
void collect_scores(const PendingScores& pending, Scores& out, const std::function<std::string(size_t)>& describe);

// The scores of `rows` of a feature set, in batches of kScoreBatch, the next batch gathered on the host
// while the device scores this one. `what` names the data in errors and interruption messages ("the test
// split"); a non-finite score names the dataset index of the image.
// With several ranks in `comm` (every rank calls it, with the same flow and rows), rank r scores its
// contiguous part of the rows, cut at multiples of kScoreBatch (dist::part), so each batch is one that one
// process would score and every score is bit for bit one process's; the parts are then put together on every
// rank by one all-reduce of a zero-filled f64 buffer in which each rank has written its own part (a sum
// with zeros is exact). A feature set that some rank cannot read alone (a sharded cache on per-node disks)
// is read collectively, batch by batch (FeatureSet::batch with comm).
Scores score_rows(flows::Flow& flow, const FeatureSet& features, const std::vector<int64_t>& rows, Device device,
                  const std::string& what, dist::Communicator& comm = dist::Communicator::self());

}  // namespace sanf::apps
