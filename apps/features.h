// apps/features.h: the backbone's tokens for (a part of) a dataset split, computed once, cached on disk.
//
// A FeatureRequest names everything the tokens depend on: the backbone (a checkpoint's content, or a random
// architecture, size and seed; its precision when not f32), the preprocessing (in the ViT config: image size, mean, std), the dataset
// (name, directory, number of images), the split, the class (-1: all) and the limit, and the storage dtype.
// Those fields, written out as one canonical text, are the cache key; the file is
//   <cache_dir>/<16 hex digits of the key's FNV-1a hash>.safetensors
// with the whole key in its metadata, compared on every hit (so a hash collision is a miss, never a wrong
// answer). A second run, or another normal class sharing the test split, reuses the file instead of running
// the backbone again. A checkpoint is identified by a hash of its bytes, not by its path. Replacing a
// dataset's files in place under the same directory with the same image count is not detected: clear the
// cache (delete the directory) when you do that.
//
// Without a cache directory the tokens go to a temporary file (<temp dir>/sanf-features-<pid>-<n>.safetensors,
// written as any AtomicFile) that is deleted as soon as it is mapped.
//
// A killed extraction cannot delete its half-written file ("<file>.tmp.<host>.<pid>", core/atomic_file.h).
// load_features removes such files from the cache directory (or the temp directory without a cache) when
// their process is gone and they are 10 minutes old, and prints one line on stderr with their count and size.
// Either way the FeatureSet reads the file through a memory map: resident memory stays bounded while
// training samples batches from a split far larger than RAM.
#pragma once

#include <string>
#include <vector>

#include "apps/extract.h"

namespace sanf::apps {

struct FeatureRequest {
  BackboneOptions backbone;
  std::string dataset, data_dir;
  DatasetOptions dataset_options;
  Split split = Split::Train;
  int64_t label = -1;   // -1: every image of the split; c >= 0: only the images of class c
  int64_t limit = 0;    // > 0: only the first `limit` selected images (in dataset order)
  ExtractOptions extract;
  std::string cache_dir;  // "" = no cache
};

class FeatureSet {
 public:
  int64_t size() const { return cls_.shape()[0]; }
  int64_t dim() const { return cls_.shape()[1]; }
  int64_t tokens() const { return patches_.shape()[1]; }
  const std::vector<int64_t>& labels() const { return labels_; }
  const std::vector<int64_t>& indices() const { return indices_; }  // each row's index in the dataset
  const std::string& path() const { return path_; }
  bool from_cache() const { return from_cache_; }

  // Rows `rows` as f32 host tensors: y (b, D) and P (b, N, D). (The training and scoring loops move them
  // to the device themselves, after gathering the next batch while the device works: apps/train.cpp.)
  std::pair<Tensor, Tensor> batch(const std::vector<int64_t>& rows) const;

  // Opens a features file (written by extract_to_file) and checks its tensors agree with each other.
  static FeatureSet open(const std::string& path, bool from_cache);

 private:
  Tensor cls_, patches_;  // views of the mapped file (f32 or f16)
  std::vector<int64_t> labels_, indices_;
  std::string path_;
  bool from_cache_ = false;
};

// The canonical key text of a request (see above).
std::string feature_cache_key(const FeatureRequest& req, const Dataset& ds);
// The default cache directory: $SANF_CACHE_DIR, else $XDG_CACHE_HOME/sanf/features, else
// $HOME/.cache/sanf/features.
std::string default_cache_dir();

// The tokens of `req`: from the cache when present, else extracted (the backbone is built only then) and,
// with a cache directory, stored for next time. Prints one line on stderr saying which.
//
// With several ranks in `comm` every rank calls it and every rank gets the whole feature set (each maps the
// file). The ranks agree on a miss (one all-reduce: a miss on any rank is a miss for all) and then extract
// together (extract_to_file_parallel: each rank its part of the images). The file is written by the ranks
// that missed and have local rank 0, one per node, into the cache directory, which may therefore be a
// shared file system (the nodes' identical files replace each other atomically) or each node's local disk;
// without a cache directory every rank writes its own temporary file. The whole set is one file: every
// rank maps all of it (the pages it reads come in as needed).
FeatureSet load_features(const FeatureRequest& req, dist::Communicator& comm = dist::Communicator::self());

// FNV-1a 64-bit hash of a file's bytes, streamed; 16 hex digits.
std::string file_fingerprint(const std::string& path);

}  // namespace sanf::apps
