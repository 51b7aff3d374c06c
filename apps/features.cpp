// apps/features.cpp: the feature cache (key, lookup, extraction on a miss) and batch reads from it.
#include "apps/features.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <set>
#include <sstream>

#include "apps/run_dir.h"
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
  return open(SafetensorsFile::open(path), path, from_cache);
}

FeatureSet FeatureSet::open(const SafetensorsFile& f, const std::string& path, bool from_cache) {
  FeatureSet s;
  s.path_ = path;
  s.from_cache_ = from_cache;
  for (const char* name : {"cls", "patches", "labels", "indices"})
    SANF_CHECK(f.contains(name), path, ": not a features file (no tensor '", name, "')");
  Shard sh;
  sh.cls = f.get("cls");
  sh.patches = f.get("patches");
  const Tensor labels = f.get("labels"), indices = f.get("indices");
  SANF_CHECK(sh.cls.dim() == 2 && sh.patches.dim() == 3 && labels.dim() == 1 && indices.dim() == 1 &&
                 labels.dtype() == DType::I64 && indices.dtype() == DType::I64 &&
                 sh.patches.shape()[0] == sh.cls.shape()[0] && sh.patches.shape()[2] == sh.cls.shape()[1] &&
                 labels.numel() == sh.cls.shape()[0] && indices.numel() == sh.cls.shape()[0] &&
                 sh.cls.dtype() == sh.patches.dtype() &&
                 (sh.cls.dtype() == DType::F32 || sh.cls.dtype() == DType::F16),
             path, ": inconsistent features file: cls ", shape_str(sh.cls.shape()), " patches ",
             shape_str(sh.patches.shape()), " labels ", shape_str(labels.shape()), " indices ",
             shape_str(indices.shape()));
  s.rows_ = sh.cls.shape()[0];
  s.dim_ = sh.cls.shape()[1];
  s.tokens_ = sh.patches.shape()[1];
  sh.hi = s.rows_;
  s.shards_.push_back(sh);
  s.labels_ = to_i64_vector(labels);
  s.indices_ = to_i64_vector(indices);
  return s;
}

const FeatureSet::Shard& FeatureSet::shard_of(int64_t row) const {
  SANF_CHECK(row >= 0 && row < rows_, path_, ": row ", row, " outside its ", rows_, " rows");
  // The shards are in row order and cover [0, rows_): the last one starting at or before `row`.
  auto it = std::upper_bound(shards_.begin(), shards_.end(), row, [](int64_t r, const Shard& s) { return r < s.lo; });
  return *std::prev(it);
}

void FeatureSet::copy_row(const Shard& sh, int64_t row, const Tensor& y, const Tensor& P, int64_t k) {
  kernels::copy(select(y, 0, k), select(sh.cls, 0, row - sh.lo));
  kernels::copy(select(P, 0, k), select(sh.patches, 0, row - sh.lo));
}

std::pair<Tensor, Tensor> FeatureSet::batch(const std::vector<int64_t>& rows) const {
  const int64_t b = int64_t(rows.size());
  Tensor y = Tensor::empty({b, dim()}), P = Tensor::empty({b, tokens(), dim()});
  for (int64_t k = 0; k < b; ++k) {
    const int64_t r = rows[size_t(k)];
    const Shard& sh = shard_of(r);
    SANF_CHECK(sh.cls.defined(), path_, ": row ", r, " is in the shard of rows [", sh.lo, ", ", sh.hi,
               "), which this rank cannot see (a sharded cache on per-node disks): read it with the ranks together");
    copy_row(sh, r, y, P, k);
  }
  return {y, P};
}

std::pair<Tensor, Tensor> FeatureSet::batch(const std::vector<int64_t>& rows, dist::Communicator& comm) const {
  if (all_local_) return batch(rows);
  SANF_CHECK(comm.size() == ranks_, path_, ": a batch read by ", comm.size(), " ranks from a set loaded by ", ranks_);
  Tensor counts = zeros({comm.size()}, DType::I64);
  counts.data<int64_t>()[comm.rank()] = int64_t(rows.size());
  comm.all_reduce_sum(counts);
  std::pair<Tensor, Tensor> mine{Tensor::empty({0, dim_}), Tensor::empty({0, tokens_, dim_})};
  for (int q = 0; q < comm.size(); ++q) {
    const int64_t b = counts.data<int64_t>()[q];
    if (b == 0) continue;
    Tensor request = q == comm.rank()
                         ? Tensor::from_vector(std::vector<double>(rows.begin(), rows.end()), {b}, DType::I64)
                         : Tensor::empty({b}, DType::I64);
    comm.broadcast(request, q);
    Tensor y = full({b, dim_}, -0.0), P = full({b, tokens_, dim_}, -0.0);
    for (int64_t k = 0; k < b; ++k) {
      const int64_t r = request.data<int64_t>()[k];
      const Shard& sh = shard_of(r);
      if (sh.server == comm.rank()) copy_row(sh, r, y, P, k);
    }
    comm.all_reduce_sum(y);
    comm.all_reduce_sum(P);
    if (q == comm.rank()) mine = {y, P};
  }
  return mine;
}

namespace {

using json = nlohmann::json;

std::string shard_file_name(const std::string& hash, int r, int n) {
  return cat(hash, ".shard-", r, "-of-", n, ".safetensors");
}

// A sharded entry as this rank finds it in its cache directory: whether its index is there and names this
// key, and for each shard it lists, the shard opened where this rank can read it (the file present, its
// metadata naming the key and the same row range).
struct ShardedLookup {
  bool index_ok = false;
  json index;
  std::vector<std::optional<FeatureSet>> shards;  // nullopt: not readable here
  uint64_t layout_hash = 0;  // of the shard list, for the ranks to check they read the same one
};

ShardedLookup look_up_sharded(const std::string& dir, const std::string& hash, const std::string& key) {
  ShardedLookup L;
  const fs::path index_path = fs::path(dir) / (hash + ".index.json");
  if (!fs::exists(index_path)) return L;
  try {
    L.index = read_json_file(index_path.string());
    if (L.index.at("cache_key").get<std::string>() != key) return L;
    std::string layout;
    for (const json& sh : L.index.at("shards")) {
      const std::string file = sh.at("file");
      const int64_t lo = sh.at("lo"), hi = sh.at("hi");
      SANF_CHECK(file.rfind(hash + ".shard-", 0) == 0 && file.find('/') == std::string::npos, "shard file name '", file,
                 "' is not one of this entry's");
      layout += cat(file, ":", lo, ":", hi, "\n");
      std::optional<FeatureSet> shard;
      const fs::path f = fs::path(dir) / file;
      if (fs::exists(f)) {
        try {
          const SafetensorsFile sf = SafetensorsFile::open(f.string());
          const auto& m = sf.metadata();
          if (m.at("cache_key") == key && m.at("shard.lo") == std::to_string(lo) &&
              m.at("shard.hi") == std::to_string(hi)) {
            shard = FeatureSet::open(sf, f.string(), true);
            if (shard->size() != hi - lo) shard.reset();
          }
        } catch (const std::exception& e) {
          fmt::print(stderr, "features: ignoring shard {} ({})\n", f.string(), e.what());
        }
      }
      L.shards.push_back(std::move(shard));
    }
    L.layout_hash = fnv1a(kFnvOffset, layout.data(), layout.size());
    L.index_ok = true;
  } catch (const std::exception& e) {  // a damaged index is a miss, rebuilt, never trusted
    fmt::print(stderr, "features: ignoring cache index {} ({})\n", index_path.string(), e.what());
    L = ShardedLookup{};
  }
  return L;
}

// Whether the ranks of `comm` together hold the whole sharded entry: every rank has the same index, and every
// shard is seen by some rank. Collective (the same calls on every rank). On success `server` is, for each
// shard, the lowest rank that sees it, and `all_local` whether every rank sees every shard.
bool sharded_hit(const ShardedLookup& L, dist::Communicator& comm, std::vector<int>& server, bool& all_local) {
  if (comm.all_reduce_sum(L.index_ok ? 0.0 : 1.0) != 0) return false;
  // The same shard list everywhere: 40 bits of its hash, whose sum is size x one's own on every rank only if
  // they agree (doubles add 40-bit integers exactly).
  const double h = double(L.layout_hash >> 24);
  const bool agree = comm.all_reduce_sum(h) == h * comm.size();
  if (comm.all_reduce_sum(agree ? 0.0 : 1.0) != 0) return false;
  const auto S = int64_t(L.shards.size());
  Tensor vis = zeros({comm.size(), std::max<int64_t>(S, 1)}, DType::I64);
  for (int64_t k = 0; k < S; ++k) vis.data<int64_t>()[comm.rank() * S + k] = L.shards[size_t(k)] ? 1 : 0;
  comm.all_reduce_sum(vis);
  server.assign(size_t(S), -1);
  all_local = true;
  for (int64_t k = 0; k < S; ++k) {
    int seen_by = 0;
    for (int r = comm.size() - 1; r >= 0; --r)
      if (vis.data<int64_t>()[r * S + k] != 0) server[size_t(k)] = r, ++seen_by;
    if (seen_by == 0) return false;
    all_local = all_local && seen_by == comm.size();
  }
  return true;
}

}  // namespace

FeatureSet load_features(const FeatureRequest& req, dist::Communicator& comm) {
  const bool root = comm.is_root();
  auto ds = open_dataset(req.dataset, req.data_dir, req.split, req.dataset_options);
  const std::vector<int64_t> idx = select_indices(req, *ds);
  SANF_CHECK(!idx.empty(), req.dataset, " (", req.data_dir, "), ", split_name(req.split), " split: no images",
             req.label >= 0 ? cat(" of class ", req.label) : std::string());
  const std::string key = feature_cache_key(req, *ds), hash = hex16(fnv1a(kFnvOffset, key.data(), key.size()));
  // A sharded entry, opened where the ranks together hold it (else nullopt; collective).
  auto open_sharded = [&](bool from_cache) -> std::optional<FeatureSet> {
    const ShardedLookup L = look_up_sharded(req.cache_dir, hash, key);
    std::vector<int> server;
    bool all_local = false;
    if (!sharded_hit(L, comm, server, all_local)) return std::nullopt;
    FeatureSet s;
    s.path_ = (fs::path(req.cache_dir) / (hash + ".index.json")).string();
    s.from_cache_ = from_cache;
    s.all_local_ = all_local;
    s.ranks_ = comm.size();
    s.rows_ = L.index.at("rows");
    s.dim_ = L.index.at("dim");
    s.tokens_ = L.index.at("tokens");
    s.labels_ = L.index.at("labels").get<std::vector<int64_t>>();
    s.indices_ = L.index.at("indices").get<std::vector<int64_t>>();
    SANF_CHECK(s.rows_ == int64_t(idx.size()), s.path_, ": ", s.rows_, " rows, but the request selects ", idx.size(),
               " images");
    SANF_CHECK(int64_t(s.labels_.size()) == s.rows_ && int64_t(s.indices_.size()) == s.rows_, s.path_,
               ": labels and indices for ", s.labels_.size(), " and ", s.indices_.size(), " rows, not ", s.rows_);
    int64_t next = 0;
    for (size_t k = 0; k < L.shards.size(); ++k) {
      const json& j = L.index.at("shards")[k];
      FeatureSet::Shard sh;
      sh.lo = j.at("lo");
      sh.hi = j.at("hi");
      sh.server = server[k];
      SANF_CHECK(sh.lo == next && sh.hi > sh.lo, s.path_, ": shard ", k, " holds rows [", sh.lo, ", ", sh.hi,
                 "), not the next rows from ", next);
      next = sh.hi;
      if (const std::optional<FeatureSet>& f = L.shards[k]) {
        SANF_CHECK(f->dim() == s.dim_ && f->tokens() == s.tokens_, f->path(), ": tokens of width ", f->dim(), " x ",
                   f->tokens(), ", the index says ", s.dim_, " x ", s.tokens_);
        sh.cls = f->shards_[0].cls;
        sh.patches = f->shards_[0].patches;
      }
      s.shards_.push_back(sh);
    }
    SANF_CHECK(next == s.rows_, s.path_, ": the shards end at row ", next, " of ", s.rows_);
    return s;
  };

  std::string path;
  bool hit = false;
  if (!req.cache_dir.empty()) {
    std::error_code ec;
    fs::create_directories(req.cache_dir, ec);
    SANF_CHECK(!ec, req.cache_dir, ": cannot create the feature cache directory: ", ec.message());
    if (comm.local_rank() == 0) report_reclaimed(req.cache_dir);
    path = (fs::path(req.cache_dir) / (hash + ".safetensors")).string();
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
    if (std::optional<FeatureSet> s = open_sharded(true)) {
      if (root)
        fmt::print(stderr, "features: {} {} images from the cache ({}, {} shards{})\n", s->size(),
                   split_name(req.split), s->path(), s->shards_.size(),
                   s->all_local() ? "" : ", each rank reading the ones its node holds");
      return std::move(*s);
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
  if (!req.cache_dir.empty() && comm.size() > 1) {
    // Several ranks with a cache: each writes its part as its shard, then every rank the index.
    const auto n = int64_t(idx.size());
    json shards = json::array();
    for (int r = 0; r < comm.size(); ++r) {
      const dist::Part p = dist::part(n, req.extract.batch_size, r, comm.size());
      if (p.size() == 0) continue;  // more ranks than batches: this one holds no rows
      const std::string file = shard_file_name(hash, r, comm.size());
      shards.push_back({{"file", file}, {"lo", p.lo}, {"hi", p.hi}});
      if (r != comm.rank()) continue;
      std::map<std::string, std::string> shard_meta = meta;
      shard_meta["shard.lo"] = std::to_string(p.lo);
      shard_meta["shard.hi"] = std::to_string(p.hi);
      ExtractOptions opt = req.extract;
      opt.progress = opt.progress && root;
      extract_to_file(*model, *ds, std::vector<int64_t>(idx.begin() + p.lo, idx.begin() + p.hi),
                      (fs::path(req.cache_dir) / file).string(), shard_meta, opt);
    }
    comm.barrier();  // every shard is complete before any index names it
    std::vector<int64_t> labels;
    for (int64_t i : idx) labels.push_back(ds->label(i));
    const vit::ViTConfig& cfg = model->config();
    write_json_file((fs::path(req.cache_dir) / (hash + ".index.json")).string(),
                    json{{"format", "sanf-features-index-v1"},
                         {"cache_key", key},
                         {"rows", n},
                         {"dim", cfg.dim},
                         {"tokens", cfg.num_patches()},
                         {"shards", shards},
                         {"labels", labels},
                         {"indices", idx}});
    comm.barrier();
    // Shards of this entry that the new index does not list (an earlier extraction with another number of
    // ranks) are removed, one rank per node. A process still mapping one keeps reading it: on POSIX the
    // data stays until the last mapping goes.
    if (comm.local_rank() == 0) {
      std::set<std::string> listed;
      for (const json& sh : shards) listed.insert(sh.at("file").get<std::string>());
      std::error_code ec;
      for (const auto& entry : fs::directory_iterator(req.cache_dir, ec)) {
        const std::string name = entry.path().filename().string();
        if (name.rfind(hash + ".shard-", 0) == 0 && entry.path().extension() == ".safetensors" &&
            listed.count(name) == 0)
          fs::remove(entry.path(), ec);
      }
    }
    std::optional<FeatureSet> s = open_sharded(false);
    SANF_CHECK(s.has_value(), req.cache_dir, ": the shards just written to the feature cache cannot be read back");
    return std::move(*s);
  }
  // One process, or no cache: one file. Without a cache every rank writes its own temporary file.
  extract_to_file_parallel(*model, *ds, idx, path, meta, req.extract, comm, true);
  FeatureSet s = FeatureSet::open(path, false);
  if (req.cache_dir.empty()) std::remove(path.c_str());  // the mapping stays valid; the name goes
  return s;
}

}  // namespace sanf::apps
