// apps/predict.cpp: the predict loop and its outputs (see apps/predict.h).
#include "apps/predict.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fmt/format.h>
#include <map>
#include <numeric>

#include "apps/image_io.h"
#include "apps/interrupt.h"
#include "apps/metrics.h"
#include "apps/progress.h"
#include "apps/report.h"
#include "apps/scoring.h"
#include "core/atomic_file.h"
#include "vit/preprocess.h"

namespace sanf::apps {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Scores one source into rows[first ...], in source order.
class SourceRun {
 public:
  // Images [lo, hi) of the source (all of it unless a rank of several takes a part).
  SourceRun(Detector& d, const PredictSource& src, const Threshold& t, const PredictOptions& opt,
            std::vector<Prediction>& rows, int64_t done_before, int64_t total, int64_t lo, int64_t hi,
            Progress& progress)
      : d_(d), src_(src), t_(t), opt_(opt), rows_(rows), done_before_(done_before), total_(total), lo_(lo), hi_(hi),
        progress_(progress) {}

  void run() {
    const Dataset& ds = *src_.images;
    const int64_t bb = d_.backbone_batch, lo = lo_, hi = hi_;
    first_ = reported_ = processed_end_ = int64_t(rows_.size());
    for (int64_t i = lo; i < hi; ++i) {
      Prediction p;
      p.index = i;
      p.input = src_.name.empty() ? ds.describe(i) : cat(src_.name, ":", i);
      if (!src_.name.empty() && ds.label(i) >= 0 && ds.label(i) < int64_t(ds.class_names().size()))
        p.label = ds.class_names()[size_t(ds.label(i))];
      rows_.push_back(p);
    }
    const Device dev = d_.device;
    Batch next = hi > lo ? load(lo) : Batch{};
    for (int64_t start = lo; start < hi; start += bb) {
      check_interrupt(cat("while predicting (", done_before_ + start, "/", total_, " images done)"));
      Batch cur = std::move(next);
      if (!cur.rows.empty()) {
        NoGradGuard no_grad;
        Tensor tokens = d_.backbone->forward(to(cur.input, dev));  // (b, 1+N, D)
        if (d_.f16_tokens) tokens = to(to(tokens, DType::F16), DType::F32);
        queue_.push_back(tokens);
        queued_rows_.insert(queued_rows_.end(), cur.rows.begin(), cur.rows.end());
        launch_full_chunks(false);
      }
      processed_end_ = first_ + std::min(hi, start + bb) - lo;
      next = start + bb < hi ? load(start + bb) : Batch{};  // decoded while the device works
      collect();
      progress_.update(done_before_ + start - lo + std::min(bb, hi - start));
    }
    launch_full_chunks(true);
    collect();
  }

 private:
  struct Batch {
    Tensor input;               // (b, 3, S, S) preprocessed, on the host
    std::vector<int64_t> rows;  // the rows_ indices of its b images
  };
  struct Chunk {
    PendingScores pending;
    std::vector<int64_t> rows;
  };

  // Images [start, start + backbone_batch) decoded and preprocessed; corrupt ones recorded (skip_corrupt).
  Batch load(int64_t start) {
    const Dataset& ds = *src_.images;
    const int64_t b = std::min(d_.backbone_batch, hi_ - start);
    Batch batch;
    std::vector<Tensor> images;
    for (int64_t k = 0; k < b; ++k) {
      const int64_t row = first_ + start - lo_ + k;
      try {
        images.push_back(ds.image(start + k));
        if (opt_.map != MapKind::None) originals_[row] = images.back();
      } catch (const Error& e) {
        if (!opt_.skip_corrupt) throw;
        rows_[size_t(row)].error = e.what();
        continue;
      }
      batch.rows.push_back(row);
    }
    if (!images.empty()) batch.input = vit::preprocess(images, d_.backbone->config());
    return batch;
  }

  // Launches the flow on every full kScoreBatch of queued tokens (and, with `all`, on what is left).
  void launch_full_chunks(bool all) {
    while (int64_t(queued_rows_.size()) >= kScoreBatch || (all && !queued_rows_.empty())) {
      const int64_t c = std::min<int64_t>(kScoreBatch, int64_t(queued_rows_.size()));
      // Take c rows from the front of the queue of token batches.
      std::vector<Tensor> parts;
      int64_t need = c;
      while (need > 0) {
        Tensor& front = queue_.front();
        const int64_t take = std::min(need, front.size(0));
        parts.push_back(narrow(front, 0, 0, take));
        if (take == front.size(0)) queue_.erase(queue_.begin());
        else front = narrow(front, 0, take, front.size(0) - take);
        need -= take;
      }
      const Tensor tokens = parts.size() == 1 ? parts[0] : concat(parts, 0);
      const int64_t N = tokens.size(1) - 1;
      Chunk chunk;
      chunk.rows.assign(queued_rows_.begin(), queued_rows_.begin() + c);
      queued_rows_.erase(queued_rows_.begin(), queued_rows_.begin() + c);
      const Tensor y = contiguous(select(tokens, 1, 0)), P = contiguous(narrow(tokens, 1, 1, N));
      chunk.pending = launch_scores(*d_.flow, y, P);
      if (opt_.map != MapKind::None) write_maps(chunk.rows, patch_maps(*d_.flow, opt_.map, y, P));
      chunks_.push_back(std::move(chunk));
    }
  }

  // Waits for the launched chunks and fills their rows.
  void collect() {
    for (Chunk& c : chunks_) {
      Scores s;
      collect_scores(c.pending, s, [&](size_t k) { return rows_[size_t(c.rows[k])].input; });
      for (size_t k = 0; k < c.rows.size(); ++k) {
        Prediction& p = rows_[size_t(c.rows[k])];
        p.scored = true;
        p.nll = s.nll[k];
        p.z2 = s.z2[k];
        p.anomalous = p.nll >= t_.value;
        p.normalized = normalized_score(p.nll, t_.value, t_.lo, t_.hi);
      }
    }
    chunks_.clear();
    // Rows are reported in order: everything before the first row still waiting is final.
    const int64_t waiting = queued_rows_.empty() ? processed_end_ : queued_rows_.front();
    for (; reported_ < waiting; ++reported_)
      if (opt_.json_out) {
        fmt::print(opt_.json_out, "{}\n", prediction_json(rows_[size_t(reported_)], t_).dump());
        std::fflush(opt_.json_out);
      }
  }

  // maps (b, g, g): each over its image, normalised to its own range, as a PNG.
  void write_maps(const std::vector<int64_t>& rows, const Tensor& maps) {
    for (size_t k = 0; k < rows.size(); ++k) {
      Prediction& p = rows_[size_t(rows[k])];
      const Tensor image = originals_.at(rows[k]);
      originals_.erase(rows[k]);
      std::string name = fs::path(p.input).filename().string();
      if (!src_.name.empty()) name = cat(src_.name, "-", p.index);
      for (char& c : name)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') c = '_';
      // Named by the image's row in the whole output (the same under any number of ranks).
      p.map = (fs::path(opt_.map_dir) / cat(done_before_ + p.index, "_", fs::path(name).stem().string(), ".png")).string();
      write_png(p.map, map_over_image(image, select(maps, 0, int64_t(k))));
    }
  }

  Detector& d_;
  const PredictSource& src_;
  const Threshold& t_;
  const PredictOptions& opt_;
  std::vector<Prediction>& rows_;
  int64_t done_before_, total_, lo_, hi_, first_ = 0;
  Progress& progress_;
  std::vector<Tensor> queue_;         // token batches (b, 1+N, D) on the device, not yet scored
  std::vector<int64_t> queued_rows_;  // their rows, in order
  std::vector<Chunk> chunks_;         // launched, not yet collected
  std::map<int64_t, Tensor> originals_;  // decoded images waiting for their map (maps only)
  int64_t processed_end_ = 0;  // rows before this have been through the backbone (or failed to decode)
  int64_t reported_ = 0;       // rows before this have been written as JSON lines
};

json prediction_record(const Prediction& p) {
  return json{{"input", p.input}, {"label", p.label}, {"error", p.error}, {"map", p.map}, {"index", p.index},
              {"scored", p.scored}, {"anomalous", p.anomalous}, {"nll", p.nll}, {"z2", p.z2},
              {"normalized", p.normalized}};
}

Prediction prediction_from_record(const json& j) {
  Prediction p;
  p.input = j.at("input"), p.label = j.at("label"), p.error = j.at("error"), p.map = j.at("map");
  p.index = j.at("index"), p.scored = j.at("scored"), p.anomalous = j.at("anomalous");
  p.nll = j.at("nll"), p.z2 = j.at("z2"), p.normalized = j.at("normalized");
  return p;
}

}  // namespace

std::vector<Prediction> predict(Detector& detector, const std::vector<PredictSource>& sources,
                                const Threshold& threshold, const PredictOptions& opt, dist::Communicator& comm) {
  int64_t total = 0;
  for (const PredictSource& s : sources) total += s.images->size();
  std::vector<Prediction> rows;
  rows.reserve(size_t(total));
  int64_t done = 0;
  if (comm.size() == 1) {
    Progress progress("predict", total, opt.progress);
    for (const PredictSource& s : sources) {
      SourceRun(detector, s, threshold, opt, rows, done, total, 0, s.images->size(), progress).run();
      done += s.images->size();
    }
    return rows;
  }
  // Several ranks: each its part of each source, cut where both the backbone's and the flow's batches start
  // (so every batch is one that one process runs); the JSON lines are printed by rank 0 once all is back.
  const int64_t unit = std::lcm(detector.backbone_batch, kScoreBatch);
  PredictOptions mine = opt;
  mine.json_out = nullptr;
  Progress progress("predict", total, opt.progress && comm.is_root());
  std::vector<std::vector<int64_t>> counts(sources.size());  // rows of source s from rank r
  for (size_t s = 0; s < sources.size(); ++s) {
    const dist::Part part = dist::part(sources[s].images->size(), unit, comm.rank(), comm.size());
    SourceRun(detector, sources[s], threshold, mine, rows, done, total, part.lo, part.hi, progress).run();
    done += sources[s].images->size();
    for (int r = 0; r < comm.size(); ++r)
      counts[s].push_back(dist::part(sources[s].images->size(), unit, r, comm.size()).size());
  }
  progress.finish();
  // Every rank's rows to rank 0 (one broadcast per rank), then put in source order there.
  json own = json::array();
  for (const Prediction& p : rows) own.push_back(prediction_record(p));
  std::vector<json> from(size_t(comm.size()));
  for (int r = 0; r < comm.size(); ++r)
    from[size_t(r)] = json::parse(comm.broadcast(r == comm.rank() ? own.dump() : std::string(), r));
  if (!comm.is_root()) return {};
  std::vector<Prediction> all;
  all.reserve(size_t(total));
  std::vector<size_t> next(size_t(comm.size()), 0);
  for (size_t s = 0; s < sources.size(); ++s)
    for (int r = 0; r < comm.size(); ++r)
      for (int64_t k = 0; k < counts[s][size_t(r)]; ++k) all.push_back(prediction_from_record(from[size_t(r)].at(next[size_t(r)]++)));
  if (opt.json_out)
    for (const Prediction& p : all) fmt::print(opt.json_out, "{}\n", prediction_json(p, threshold).dump());
  return all;
}

json prediction_json(const Prediction& p, const Threshold& t) {
  json j{{"input", p.input}, {"index", p.index}, {"label", p.label}, {"threshold", t.value}};
  if (p.scored) {
    j["score_nll"] = p.nll;
    j["score_z2"] = p.z2;
    j["score_normalized"] = p.normalized;
    j["verdict"] = p.anomalous ? "anomalous" : "normal";
    if (!p.map.empty()) j["map"] = p.map;
  } else {
    j["verdict"] = "error";
    j["error"] = p.error;
  }
  return j;
}

void write_predictions_csv(const std::string& path, const std::vector<Prediction>& rows, const Threshold& t) {
  std::string s = "input,index,label,score_nll,score_z2,score_normalized,threshold,verdict,map,error\n";
  for (const Prediction& p : rows) {
    s += cat(csv_field(p.input), ",", p.index, ",", csv_field(p.label), ",");
    if (p.scored)
      s += cat(csv_number(p.nll), ",", csv_number(p.z2), ",", csv_number(p.normalized), ",", csv_number(t.value), ",",
               p.anomalous ? "anomalous" : "normal", ",", csv_field(p.map), ",\n");
    else
      s += cat(",,,", csv_number(t.value), ",error,,", csv_field(p.error), "\n");
  }
  write_file_atomic(path, s);
}

}  // namespace sanf::apps
