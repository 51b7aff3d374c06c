// apps/features.cpp: the feature cache (key, lookup, extraction on a miss) and batch reads from it.
#include "apps/features.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <sstream>

#include "core/atomic_file.h"
#include "core/safetensors.h"
#include "kernels/copy.h"

namespace sanf::apps {

namespace fs = std::filesystem;

namespace {

constexpr uint64_t kFnvOffset = 1469598103934665603ull, kFnvPrime = 1099511628211ull;

uint64_t fnv1a(uint64_t h, const char* p, size_t n) {
  for (size_t i = 0; i < n; ++i) h = (h ^ uint8_t(p[i])) * kFnvPrime;
  return h;
}

std::string hex16(uint64_t h) { return fmt::format("{:016x}", h); }

std::vector<int64_t> to_i64_vector(const Tensor& t) {
  std::vector<int64_t> v(size_t(t.numel()));
  const Tensor c = contiguous(t);
  std::copy(c.data<int64_t>(), c.data<int64_t>() + c.numel(), v.begin());
  return v;
}

// The dataset indices a request selects, in dataset order.
std::vector<int64_t> select_indices(const FeatureRequest& req, const Dataset& ds) {
  std::vector<int64_t> idx;
  for (int64_t i = 0; i < ds.size(); ++i) {
    if (req.label >= 0 && ds.label(i) != req.label) continue;
    idx.push_back(i);
    if (req.limit > 0 && int64_t(idx.size()) == req.limit) break;
  }
  return idx;
}

// Removes the temporary files that killed writers left in `dir` (core/atomic_file.h) and says so.
void report_reclaimed(const std::string& dir) {
  const ReclaimedFiles r = reclaim_stale_temp_files(dir);
  if (r.files > 0)
    fmt::print(stderr, "features: removed {} temporary file{} ({:.1f} MB) that a killed process left in {}\n",
               r.files, r.files == 1 ? "" : "s", double(r.bytes) / 1e6, dir);
}

}  // namespace

std::string file_fingerprint(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  SANF_CHECK(f.good(), path, ": cannot open");
  std::vector<char> buf(1 << 20);
  uint64_t h = kFnvOffset;
  while (f) {
    f.read(buf.data(), std::streamsize(buf.size()));
    h = fnv1a(h, buf.data(), size_t(f.gcount()));
  }
  return hex16(h);
}

std::string default_cache_dir() {
  if (const char* d = std::getenv("SANF_CACHE_DIR"); d != nullptr && *d) return d;
  if (const char* d = std::getenv("XDG_CACHE_HOME"); d != nullptr && *d) return std::string(d) + "/sanf/features";
  if (const char* d = std::getenv("HOME"); d != nullptr && *d) return std::string(d) + "/.cache/sanf/features";
  return (fs::temp_directory_path() / "sanf-features").string();
}

std::string feature_cache_key(const FeatureRequest& req, const Dataset& ds) {
  std::map<std::string, std::string> k;
  k["format"] = "sanf-features-v1";
  if (req.backbone.is_random()) {
    k["backbone"] = req.backbone.spec;
    k["backbone.seed"] = std::to_string(req.backbone.seed);
  } else {
    k["backbone"] = "checkpoint:" + file_fingerprint(req.backbone.spec) + ":" +
                    std::to_string(fs::file_size(req.backbone.spec));
  }
  // Only when not f32, so the keys (and cached files) of f32 backbones stay what they were.
  if (req.backbone.precision != BackbonePrecision::F32)
    k["backbone.precision"] = precision_name(req.backbone.precision);
  for (const auto& [key, v] : vit::config_to_metadata(backbone_config(req.backbone))) k["vit." + key] = v;
  k["dataset"] = req.dataset;
  k["dataset.dir"] = fs::weakly_canonical(fs::absolute(req.data_dir)).string();
  k["dataset.size"] = std::to_string(ds.size());
  k["dataset.skip_corrupt"] = req.dataset_options.skip_corrupt ? "1" : "0";
  k["split"] = split_name(req.split);
  k["label"] = std::to_string(req.label);
  k["limit"] = std::to_string(req.limit);
  k["dtype"] = req.extract.f16 ? "f16" : "f32";
  std::string text;
  for (const auto& [key, v] : k) text += key + "=" + v + "\n";
  return text;
}

FeatureSet FeatureSet::open(const std::string& path, bool from_cache) {
  SafetensorsFile f = SafetensorsFile::open(path);
  FeatureSet s;
  s.path_ = path;
  s.from_cache_ = from_cache;
  for (const char* name : {"cls", "patches", "labels", "indices"})
    SANF_CHECK(f.contains(name), path, ": not a features file (no tensor '", name, "')");
  s.cls_ = f.get("cls");
  s.patches_ = f.get("patches");
  const Tensor labels = f.get("labels"), indices = f.get("indices");
  SANF_CHECK(s.cls_.dim() == 2 && s.patches_.dim() == 3 && labels.dim() == 1 && indices.dim() == 1 &&
                 labels.dtype() == DType::I64 && indices.dtype() == DType::I64 &&
                 s.patches_.shape()[0] == s.cls_.shape()[0] && s.patches_.shape()[2] == s.cls_.shape()[1] &&
                 labels.numel() == s.cls_.shape()[0] && indices.numel() == s.cls_.shape()[0] &&
                 s.cls_.dtype() == s.patches_.dtype() &&
                 (s.cls_.dtype() == DType::F32 || s.cls_.dtype() == DType::F16),
             path, ": inconsistent features file: cls ", shape_str(s.cls_.shape()), " patches ",
             shape_str(s.patches_.shape()), " labels ", shape_str(labels.shape()), " indices ",
             shape_str(indices.shape()));
  s.labels_ = to_i64_vector(labels);
  s.indices_ = to_i64_vector(indices);
  return s;
}

std::pair<Tensor, Tensor> FeatureSet::batch(const std::vector<int64_t>& rows) const {
  const int64_t b = int64_t(rows.size());
  Tensor y = Tensor::empty({b, dim()}), P = Tensor::empty({b, tokens(), dim()});
  for (int64_t k = 0; k < b; ++k) {
    const int64_t r = rows[size_t(k)];
    SANF_CHECK(r >= 0 && r < size(), path_, ": row ", r, " outside its ", size(), " rows");
    kernels::copy(select(y, 0, k), select(cls_, 0, r));
    kernels::copy(select(P, 0, k), select(patches_, 0, r));
  }
  return {y, P};
}

FeatureSet load_features(const FeatureRequest& req, dist::Communicator& comm) {
  const bool root = comm.is_root();
  auto ds = open_dataset(req.dataset, req.data_dir, req.split, req.dataset_options);
  const std::vector<int64_t> idx = select_indices(req, *ds);
  SANF_CHECK(!idx.empty(), req.dataset, " (", req.data_dir, "), ", split_name(req.split), " split: no images",
             req.label >= 0 ? cat(" of class ", req.label) : std::string());
  const std::string key = feature_cache_key(req, *ds);
  std::string path;
  bool hit = false;
  if (!req.cache_dir.empty()) {
    std::error_code ec;
    fs::create_directories(req.cache_dir, ec);
    SANF_CHECK(!ec, req.cache_dir, ": cannot create the feature cache directory: ", ec.message());
    if (comm.local_rank() == 0) report_reclaimed(req.cache_dir);
    path = (fs::path(req.cache_dir) / (hex16(fnv1a(kFnvOffset, key.data(), key.size())) + ".safetensors")).string();
    if (fs::exists(path)) {
      try {
        hit = SafetensorsFile::open(path).metadata().at("cache_key") == key;
      } catch (const std::exception& e) {  // a damaged cache entry is rebuilt, not trusted
        fmt::print(stderr, "features: ignoring cache entry {} ({})\n", path, e.what());
      }
    }
    // One process: hit as seen. Several: a hit only when every rank has the file.
    const bool all_hit = comm.size() == 1 ? hit : comm.all_reduce_sum(hit ? 0.0 : 1.0) == 0;
    if (all_hit) {
      FeatureSet s = FeatureSet::open(path, true);
      if (root)
        fmt::print(stderr, "features: {} {} images from the cache ({})\n", s.size(), split_name(req.split), path);
      return s;
    }
  } else {
    static std::atomic<int> counter{0};
    if (comm.local_rank() == 0) report_reclaimed(fs::temp_directory_path().string());
    path = (fs::temp_directory_path() /
            cat("sanf-features-", ::getpid(), "-", counter++, ".safetensors")).string();
  }
  if (root)
    fmt::print(stderr, "features: extracting {} {} images of {} with {}{}{}\n", idx.size(), split_name(req.split),
               req.dataset, req.backbone.spec,
               req.backbone.is_random() ? fmt::format(" (RANDOM weights, seed {})", req.backbone.seed) : "",
               comm.size() > 1 ? fmt::format(", {} ranks", comm.size()) : "");
  auto model = open_backbone(req.backbone);
  std::map<std::string, std::string> meta{{"cache_key", key},
                                          {"dataset", req.dataset},
                                          {"split", split_name(req.split)},
                                          {"backbone", req.backbone.spec}};
  // Who writes: with a cache, one rank per node among those that missed; without, every rank its own file.
  const bool write_here = req.cache_dir.empty() || (!hit && comm.local_rank() == 0);
  extract_to_file_parallel(*model, *ds, idx, path, meta, req.extract, comm, write_here);
  FeatureSet s = FeatureSet::open(path, false);
  if (req.cache_dir.empty()) std::remove(path.c_str());  // the mapping stays valid; the name goes
  return s;
}

}  // namespace sanf::apps
