// apps/predict.h: `sanf predict`: a trained detector on new images, a verdict per image.
//
// Sources are processed one after another: a dataset split in the forms `sanf train` reads, or loose image
// files and directories (apps/datasets.h open_image_files). Each source goes through the backbone in
// batches of the run's extraction batch size and through the flow in batches of kScoreBatch, both counted
// from the source's first image, with the tokens rounded as the run's feature cache stored them; so for the
// images of a run's test split, in order, predict gives bit for bit the scores `sanf eval` gives. On a GPU
// the next batch is decoded while the device runs.
//
// Each image gets the NLL and mean-z^2 scores (apps/scoring.h), the threshold (on the NLL), the verdict
// (anomalous when score >= threshold) and the normalised score in [0, 1], 0.5 at the threshold
// (apps/metrics.h normalized_score). A corrupt image is an error naming it; with skip_corrupt it gets a row
// with the reason instead of scores (and the images after it shift their batch positions by one).
//
// Output (write_predictions_csv), one row per image in source order:
//   input,index,label,score_nll,score_z2,score_normalized,threshold,verdict,map,error
// input: the file's path, or "<dataset>:<split>:<index>"; index: the image's index in its source; label: the
// class name for dataset sources ("" for loose files); verdict: normal, anomalous, or error (then the scores
// are empty and error says why); map: the anomaly-map PNG when maps are on (apps/maps.h; the map over the
// image, each map normalised to its own range), else empty. Numbers are printed with %.9g.
// prediction_json gives the same fields as one JSON object (`--json`: one line per image on stdout).
#pragma once

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/datasets.h"
#include "apps/detector.h"
#include "apps/maps.h"
#include "apps/thresholds.h"
#include "dist/dist.h"

namespace sanf::apps {

struct PredictSource {
  const Dataset* images = nullptr;
  std::string name;  // "" for loose files, else "<dataset>:<split>" (the input column's prefix)
};

struct PredictOptions {
  bool skip_corrupt = false;
  bool progress = true;          // a progress line with ETA on stderr
  std::FILE* json_out = nullptr; // when set, each prediction as a JSON line, as soon as it is scored
  MapKind map = MapKind::None;   // anomaly maps, written as <map_dir>/<row>_<name>.png
  std::string map_dir;
};

struct Prediction {
  std::string input, label, error, map;
  int64_t index = 0;
  bool scored = false, anomalous = false;
  double nll = 0, z2 = 0, normalized = 0;
};

// With several ranks in `comm` (every rank calls it with the same sources): rank r predicts its contiguous
// part of each source, cut at multiples of both the backbone batch and kScoreBatch so that every batch is
// one one process runs (the scores are one process's, bit for bit, unless skip_corrupt drops an image,
// which shifts the batches after it); maps are written by the rank that scored the image (the output
// directory must be one every rank sees); the rows are gathered to rank 0, which returns them all in
// source order and prints the JSON lines (at the end, not as they come); the other ranks return nothing.
std::vector<Prediction> predict(Detector& detector, const std::vector<PredictSource>& sources,
                                const Threshold& threshold, const PredictOptions& opt,
                                dist::Communicator& comm = dist::Communicator::self());

nlohmann::json prediction_json(const Prediction& p, const Threshold& threshold);
void write_predictions_csv(const std::string& path, const std::vector<Prediction>& rows, const Threshold& threshold);

}  // namespace sanf::apps
