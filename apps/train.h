// apps/train.h: the one-class protocol: a run directory, training a flow on one normal class, scoring the
// test split, and the loop over classes.
//
// A run directory (RUN) holds, as `sanf train` and `sanf eval` write them:
//   config.json      the RunConfig (what was asked, with the normal class resolved to its label and name)
//   flow.safetensors the flow after the last complete epoch, with the Adam state and "train.epoch" in its
//                    metadata; rewritten atomically at the end of every epoch, so it is always whole
//   train_log.jsonl  one JSON object per completed epoch: epoch, loss (mean over the epoch's steps, nats per
//                    dimension without the constant), seconds, steps, lr, grad_norm (of the last step); with
//                    --eval-every-epoch also test_auroc and test_auroc_z2 (the test split scored after it)
//   calibration.json (train --val-fraction F > 0) the held-out normal images' dataset indices and scores after
//                    the last epoch, and the threshold for the target false-alarm rate (--fpr) they give
//   metrics.json     (eval) auroc (NLL score, final epoch), auroc_z2 (mean z^2 score), aupr, f1_max and its
//                    threshold, "thresholds" (each decision threshold with the precision, recall and
//                    false-positive rate it reaches on the test split), auroc_max_over_epochs (when the log
//                    has test AUROCs), pixel_auroc (with --masks), counts, dataset, normal class, epoch
//   scores.csv       (eval) one row per test image: index, label, label_name, is_anomaly, score_nll, score_z2,
//                    path (the image file for folder and mvtec datasets, empty for the binary formats)
//   roc.svg, hist_nll.svg, hist_z2.svg, report.html   (eval) plots and a self-contained report
//   maps.png         (eval, maps on) the most anomalous test images, each beside its ground-truth mask
//                    (datasets with masks) and its anomaly map
//
// Training is the paper's (docs/METHOD.md §4): Adam(beta1 0.8, beta2 0.8, eps 1e-4, weight decay 1e-5), lr 5e-5,
// batch 32, loss = batch mean NLL / D. Each epoch visits the normal class's training features (less the
// held-out ones, see val_fraction) once in an
// order drawn from the seed and the epoch number (so a resumed run sees the same order as an unbroken one);
// the last batch may be smaller. A non-finite loss or gradient stops training with an error naming the epoch
// and step; the checkpoint of the last complete epoch stays as it was. Ctrl-C stops between steps the same
// way. `--resume` continues from flow.safetensors: the stored config must match the new one except for the
// schedule (epochs, lr) and where it runs (device, cache, extraction batch); an error lists what differs.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "apps/features.h"
#include "apps/maps.h"
#include "apps/thresholds.h"
#include "dist/dist.h"
#include "flows/flow.h"
#include "nn/adam.h"

namespace sanf::apps {

struct RunConfig {
  // data
  std::string dataset = "fashion-mnist";
  std::string data_dir = kDefaultFashionMnistDir;
  std::string normal_class;  // as given: a class name or its index
  int64_t normal_label = -1; // resolved by resolve()
  std::string normal_name;   // resolved by resolve()
  bool skip_corrupt = false;
  int64_t train_limit = 0;   // > 0: only the first N training images of the normal class
  int64_t test_limit = 0;    // > 0: only the first N test images
  // > 0: the last round(F n) of the n normal training images are held out from training; their scores
  // after training calibrate the normal-only threshold (calibration.json). 0: the paper's protocol.
  double val_fraction = 0;
  // backbone
  BackboneOptions backbone{"random:vit-tiny", 0, 0, 0, Device::CPU};
  // flow (dim and tokens are filled in from the backbone by resolve())
  flows::FlowConfig flow;
  // training
  int64_t epochs = 10;
  int64_t batch_size = 32;
  double lr = 5e-5, beta1 = 0.8, beta2 = 0.8, eps = 1e-4, weight_decay = 1e-5;
  uint64_t seed = 0;  // the flow's initial weights and permutations, and the order of the batches
  // where and how it runs (not part of a run's identity)
  Device device = Device::CPU;  // backbone and flow
  std::string cache_dir;  // "" = no cache
  bool cache_f16 = false;
  int64_t extract_batch = 64;
  // what training also does (not part of a run's identity either)
  double fpr = 0.01;              // the target false-alarm rate of the held-out threshold
  bool eval_every_epoch = false;  // score the test split after each epoch (test_auroc in train_log.jsonl)

  // Opens the training split to check the data and resolve the normal class (by name or index), reads the
  // backbone's config, fills flow.dim / flow.tokens, validates everything. Throws naming what is wrong.
  void resolve();
  nlohmann::json to_json() const;
  static RunConfig from_json(const nlohmann::json& j, const std::string& source);
  // The fields that define a run (everything but epochs, lr, device, cache, extraction batch, fpr and
  // eval_every_epoch).
  nlohmann::json identity() const;

  FeatureRequest features(Split split) const;  // the features the run trains (Train) or is scored on (Test)
};

struct TrainResult {
  int64_t first_epoch = 1;  // the first epoch this call trained (> 1 when resumed)
  int64_t epochs_done = 0;  // epochs complete in RUN now
  double loss = 0;          // the last epoch's mean loss
  double seconds = 0;
};
// Trains into `run_dir` (created if needed). Without `resume`, a directory that already holds a run is an
// error; with it, training continues from the last complete epoch (or from scratch if none completed).
//
// Data parallel over the ranks of `comm` (`mpirun -np N sanf train`; one process by default): every rank
// draws the same order from the seed and takes its contiguous part of each global batch of --batch-size rows
// (dist::part; a rank may get none of a small last batch); train_step sums the ranks' weighted gradients, so
// every rank applies the Adam step one process would apply for the global batch. Rank 0's parameters are
// broadcast at the start; rank 0 alone writes config.json, the checkpoints, the log and calibration.json and
// prints. Every rank reads the run directory (it must be on a file system they all see); a checkpoint
// resumes under any number of ranks. The feature cache is filled by all ranks together (load_features).
TrainResult train_run(RunConfig cfg, const std::string& run_dir, bool resume,
                      dist::Communicator& comm = dist::Communicator::self());

// One step's rows on this rank (host tensors y (b, D), P (b, N, D); b may be 0 on a rank when the global
// batch has fewer rows than there are ranks) and the global batch's row count over all ranks.
struct StepBatch {
  Tensor y, P;
  int64_t global_rows = 0;
  int64_t rows() const { return y.defined() ? y.shape()[0] : 0; }
};
struct StepResult {
  double loss = 0;          // the global batch's mean NLL / D
  double grad_norm_sq = 0;  // of the global batch's gradient
};
// The training step, the same on every rank: forward and backward of this rank's rows (loss = their mean
// NLL / D); with several ranks, one all-reduce of one flat buffer holding every gradient weighted by
// rows / global_rows, a flag per parameter and the weighted loss (so every rank then holds the global batch's
// mean loss and gradient); a check that the loss and the gradient are finite (after the all-reduce, so every
// rank stops at the same step); the Adam step. `while_queued` runs once the forward and backward are queued
// (on a GPU the host gathers the next batch meanwhile); a non-finite value throws stopped("the loss is nan")
// (the caller says where and what is still on disk). The batch moves to `device` here.
StepResult train_step(flows::Flow& flow, nn::Adam& adam, const StepBatch& batch, dist::Communicator& comm,
                      Device device, const std::function<void()>& while_queued,
                      const std::function<std::string(const std::string&)>& stopped);

struct EvalOptions {
  std::optional<Device> device;           // where backbone and flow run; default: the run's
  std::optional<std::string> cache_dir;   // default: the run's cache directory
  std::optional<double> fpr;              // the held-out threshold's target; default: calibration.json's
  int64_t thumbnails = 8;      // most anomalous / most normal test images shown in report.html
  bool progress = true;
  // Anomaly maps (apps/maps.h) of the most anomalous test images in report.html and maps.png (None: no
  // maps, and an older maps.png is removed); a no-CAFF flow, which has no attention on patch tokens, shows
  // gradient maps instead of attention maps.
  MapKind map = MapKind::Attention;
  // Pixel-level AUROC of both map kinds against the dataset's ground-truth masks (mvtec), with a map drawn
  // at random per patch as the chance line: metrics.json "pixel_auroc" {attention, gradient, random}.
  bool masks = false;
};
// Scores the test split with RUN's flow and writes metrics.json, scores.csv, the plots and report.html.
// Returns metrics.json's content. With several ranks in `comm` (every rank calls it) the test split's
// features are extracted and scored by all of them (load_features, score_rows); rank 0 alone computes
// the metrics, maps and report and writes them, and the other ranks return an empty object.
nlohmann::json eval_run(const std::string& run_dir, const EvalOptions& opt,
                        dist::Communicator& comm = dist::Communicator::self());

// Reads RUN/config.json (throws naming the file).
RunConfig read_run_config(const std::string& run_dir);

struct OneClassOptions {
  std::string classes = "all";  // "all" or a comma-separated list of class names / indices
  EvalOptions eval;
  // With several ranks: "data", every class in turn trained and scored by all ranks together (train_run,
  // eval_run); "classes", each rank trains and scores whole classes alone, as one process would (class i of
  // the list on rank i mod N), after the ranks have extracted the shared test split together.
  std::string parallel = "data";
};
// The paper's protocol: one run per normal class under out_dir/<label>-<name>/, skipping classes whose
// run already has metrics.json for the same config, resuming those left unfinished; then
// out_dir/results.csv and results.json (per-class AUROC, AUROC(z^2), AUPR, F1max, and their means),
// out_dir/index.html (that table, each class linking to its report.html; apps/report.h index_html) and the
// table on stdout. Returns results.json's content. With several ranks in `comm` (see OneClassOptions::parallel)
// rank 0 writes the table, and the other ranks return an empty object.
nlohmann::json oneclass_run(const RunConfig& base, const std::string& out_dir, const OneClassOptions& opt,
                            dist::Communicator& comm = dist::Communicator::self());

}  // namespace sanf::apps
