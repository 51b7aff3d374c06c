// apps/detector.cpp: opening a detector from a run or a model file, and exporting a run (format in
// apps/detector.h).
#include "apps/detector.h"

#include <filesystem>

#include "apps/run_dir.h"
#include "apps/thresholds.h"
#include "apps/train.h"
#include "core/safetensors.h"

namespace sanf::apps {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const std::string kBackbonePrefix = "backbone.", kFlowPrefix = "flow.";

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

// The flow conditions on the backbone's tokens: same width, same number of patch tokens.
void check_match(const vit::ViTConfig& vc, const flows::FlowConfig& fc, const std::string& source) {
  SANF_CHECK(vc.dim == fc.dim && vc.num_patches() == fc.tokens, source, ": the backbone gives ", vc.num_patches(),
             " tokens of width ", vc.dim, " (", vc.name, " at ", vc.image_size, "x", vc.image_size, ", patch ",
             vc.patch_size, ") but the flow was trained on ", fc.tokens, " of width ", fc.dim,
             ": not the backbone this flow was trained with");
}

// The run's backbone in f32 and its flow, on `device`; precision is left to the caller.
Detector open_run_f32(const std::string& run_dir, Device device) {
  const RunConfig cfg = read_run_config(run_dir);
  const std::string ckpt = (fs::path(run_dir) / "flow.safetensors").string();
  SANF_CHECK(fs::exists(ckpt), run_dir, ": no flow.safetensors (no training epoch has completed); run sanf train first");
  Detector d;
  d.source = run_dir;
  d.device = device;
  BackboneOptions b = cfg.backbone;
  b.device = device;
  b.precision = BackbonePrecision::F32;
  d.flow = flows::Flow::from_file(ckpt, DType::F32, device);
  SANF_CHECK(d.flow->config().same_architecture(cfg.flow), ckpt, ": its flow config differs from ", run_dir,
             "/config.json");
  check_match(backbone_config(b), d.flow->config(), run_dir);
  d.backbone = open_backbone(b);
  d.f16_tokens = cfg.cache_f16;
  d.backbone_batch = cfg.extract_batch;
  d.precision = cfg.backbone.precision;
  d.epoch = checkpoint_epoch(ckpt);
  d.run_config = cfg.to_json();
  d.thresholds = run_threshold_data(run_dir);
  return d;
}

// A metadata value, required.
const std::string& meta_at(const std::map<std::string, std::string>& meta, const std::string& key,
                           const std::string& path) {
  auto it = meta.find(key);
  SANF_CHECK(it != meta.end(), path, ": no '", key, "' in its metadata: not a complete sanf model");
  return it->second;
}

int64_t meta_int(const std::map<std::string, std::string>& meta, const std::string& key, const std::string& path) {
  const std::string& v = meta_at(meta, key, path);
  SANF_CHECK(!v.empty() && v.size() <= 18 && v.find_first_not_of("0123456789") == std::string::npos, path,
             ": metadata '", key, "' must be a non-negative integer, got '", v, "'");
  return std::stoll(v);
}

json meta_json(const std::map<std::string, std::string>& meta, const std::string& key, const std::string& path) {
  json j = json::parse(meta_at(meta, key, path), nullptr, false);
  SANF_CHECK(!j.is_discarded() && j.is_object(), path, ": metadata '", key, "' is not a JSON object");
  return j;
}

}  // namespace

Detector open_run_detector(const std::string& run_dir, Device device) {
  Detector d = open_run_f32(run_dir, device);
  apply_precision(*d.backbone, d.precision, device);
  return d;
}

Detector open_model_file(const std::string& path, Device device) {
  SafetensorsFile f = SafetensorsFile::open(path);
  const std::map<std::string, std::string>& meta = f.metadata();
  auto format = meta.find("format");
  SANF_CHECK(format != meta.end() && format->second == "sanf-model", path, ": not a sanf model (metadata format is '",
             format == meta.end() ? std::string("(none)") : format->second,
             "', expected 'sanf-model'); make one with sanf export --run RUN --out MODEL.safetensors");
  const int64_t version = meta_int(meta, "format_version", path);
  SANF_CHECK(version <= kModelFormatVersion, path, ": model format version ", version,
             " was written by a newer sanf; this one reads versions up to ", kModelFormatVersion);
  SANF_CHECK(version >= 1, path, ": model format version ", version, " is not valid");

  std::map<std::string, std::string> vit_meta, flow_meta;
  for (const auto& [k, v] : meta) {
    if (starts_with(k, "vit.")) vit_meta[k.substr(4)] = v;
    if (starts_with(k, kFlowPrefix)) flow_meta[k] = v;
  }
  const vit::ViTConfig vc = vit::config_from_metadata(vit_meta, path + " (backbone config, vit.*)");
  const flows::FlowConfig fc = flows::FlowConfig::from_metadata(flow_meta, path);
  check_match(vc, fc, path);
  Detector d;
  d.source = path;
  d.device = device;
  d.run_config = meta_json(meta, "run.config", path);
  d.thresholds = meta_json(meta, "run.thresholds", path);
  d.epoch = meta_int(meta, "run.epoch", path);
  const std::string f16 = meta_at(meta, "run.f16_tokens", path);  // a copy (GCC 13 warned of a dangling ref)
  SANF_CHECK(f16 == "0" || f16 == "1", path, ": metadata 'run.f16_tokens' must be 0 or 1, got '", f16, "'");
  d.f16_tokens = f16 == "1";
  d.backbone_batch = meta_int(meta, "run.backbone_batch", path);
  SANF_CHECK(d.backbone_batch > 0, path, ": metadata 'run.backbone_batch' must be positive");
  try {
    d.precision = parse_precision(meta_at(meta, "run.precision", path));
  } catch (const Error& e) {
    SANF_FAIL(path, ": metadata 'run.precision': ", e.what());
  }

  std::map<std::string, Tensor> backbone, flow;
  for (const TensorEntry& e : f.entries()) {
    if (starts_with(e.name, kBackbonePrefix)) backbone[e.name.substr(kBackbonePrefix.size())] = f.get(e.name);
    else if (starts_with(e.name, kFlowPrefix)) flow[e.name.substr(kFlowPrefix.size())] = f.get(e.name);
    else SANF_FAIL(path, ": unexpected tensor '", e.name, "' (a model holds backbone.* and flow.* tensors only)");
  }
  // Zero-filled, not drawn: the strict loads overwrite every value (or fail and the model is discarded).
  d.backbone = std::make_unique<vit::VisionTransformer>(vc, nn::InitOptions{nullptr, DType::F32, device, false});
  d.backbone->load_state_dict(backbone, path + " (backbone.*)");
  d.flow = std::make_unique<flows::Flow>(fc, DType::F32, device);
  d.flow->load_tensors(flow, path + " (flow.*)");
  apply_precision(*d.backbone, d.precision, device);
  return d;
}

ExportSummary export_model(const std::string& run_dir, const std::string& out_path) {
  const Detector d = open_run_f32(run_dir, Device::CPU);
  std::map<std::string, std::string> meta{{"format", "sanf-model"},
                                          {"format_version", std::to_string(kModelFormatVersion)},
                                          {"run.config", d.run_config.dump()},
                                          {"run.thresholds", d.thresholds.dump()},
                                          {"run.epoch", std::to_string(d.epoch)},
                                          {"run.f16_tokens", d.f16_tokens ? "1" : "0"},
                                          {"run.backbone_batch", std::to_string(d.backbone_batch)},
                                          {"run.precision", precision_name(d.precision)}};
  for (const auto& [k, v] : vit::config_to_metadata(d.backbone->config())) meta["vit." + k] = v;
  for (const auto& [k, v] : d.flow->config().to_metadata()) meta[k] = v;
  std::vector<std::pair<std::string, Tensor>> tensors;
  ExportSummary s;
  for (auto& [name, t] : d.backbone->state_dict()) tensors.emplace_back(kBackbonePrefix + name, t);
  for (auto& [name, t] : d.flow->state_dict()) tensors.emplace_back(kFlowPrefix + name, t);
  for (auto& [name, t] : tensors) s.bytes += t.numel() * int64_t(dtype_size(t.dtype()));
  s.tensors = int64_t(tensors.size());
  save_safetensors(out_path, tensors, meta);
  for (const char* kind : {"calibration", "f1"})
    if (d.thresholds.contains(kind))
      s.thresholds += cat(s.thresholds.empty() ? "" : ", ", std::string(kind) == "calibration" ? "fpr" : "f1");
  return s;
}

}  // namespace sanf::apps
