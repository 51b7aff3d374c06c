// apps/detector.h: a trained detector ready to score new images, opened from a run directory or from one
// exported model file, and the export itself.
//
// A Detector is the backbone (with its preprocessing: image size, mean and std are in its ViT config), the
// trained flow, how the run's training and evaluation saw the tokens (rounded to f16 when its feature cache
// stored f16; the backbone's GEMM precision; the backbone batch size) and what the run knows for choosing a
// threshold (apps/train.h run_threshold_data). Scoring an image with it gives exactly what `sanf eval`
// gives for the same image in the same batch position (apps/predict.h).
//
// The model file (`sanf export`), one safetensors file that needs nothing else:
//   tensors   "backbone.<timm name>" (the ViT's weights, f32, at the run's image size) and
//             "flow.<name>" (the flow's parameters and its "layers.<k>.perm" permutations)
//   metadata  "format" = "sanf-model", "format_version" = "1" (kModelFormatVersion);
//             "vit.<key>" the backbone's config (vit/config.h keys: architecture, image size, mean, std, ...);
//             "flow.<key>" the flow's config (flows/config.h); "run.config" the run's config.json;
//             "run.thresholds" the threshold data; "run.epoch"; "run.f16_tokens" ("1" or "0");
//             "run.backbone_batch"; "run.precision" (f32, tf32 or bf16)
// Opening validates all of it before anything is built and names what is wrong: not a sanf model, a newer
// format version than this sanf reads, a missing or malformed key, a backbone whose width or token count
// does not match the flow's, a tensor missing, extra, or of the wrong shape.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "apps/extract.h"
#include "flows/flow.h"

namespace sanf::apps {

constexpr int kModelFormatVersion = 1;

struct Detector {
  std::unique_ptr<vit::VisionTransformer> backbone;
  std::unique_ptr<flows::Flow> flow;
  bool f16_tokens = false;     // tokens rounded to f16 before the flow, as the run's f16 feature cache did
  int64_t backbone_batch = 64; // images per backbone batch (the run's extraction batch)
  BackbonePrecision precision = BackbonePrecision::F32;
  int64_t epoch = 0;           // the flow's training epoch
  nlohmann::json run_config;   // the run's config.json
  nlohmann::json thresholds;   // apps/train.h run_threshold_data
  std::string source;          // the run directory or model file, for messages
  Device device = Device::CPU;
};

// The run's backbone and flow on `device`, in the run's backbone precision.
Detector open_run_detector(const std::string& run_dir, Device device);
// An exported model file on `device`.
Detector open_model_file(const std::string& path, Device device);

// Writes RUN as one model file (atomically). Returns what it wrote, for the message.
struct ExportSummary {
  int64_t tensors = 0, bytes = 0;
  std::string thresholds;  // the kinds included, e.g. "fpr, f1"
};
ExportSummary export_model(const std::string& run_dir, const std::string& out_path);

}  // namespace sanf::apps
