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
//
// Several ranks (mpirun) write a cache entry as shards instead, one per rank, each rank its own part of the
// rows as it extracted them, with no gather:
//   <cache_dir>/<hash>.shard-<r>-of-<n>.safetensors   rank r's rows (its metadata: the key and the row range)
//   <cache_dir>/<hash>.index.json                     the key, the shards and their row ranges, every row's
//                                                     label and dataset index; written last, by every rank
//                                                     (identical files, atomic renames), so its presence
//                                                     marks a complete entry
// On a shared file system every rank sees every shard and reads rows itself, as from one file. On each
// node's local disk a node holds only its own ranks' shards, and a rank that needs a row it cannot see gets
// it from the lowest rank that can (FeatureSet::batch with the communicator). A later run with any number of
// ranks, one process included, uses the entry when every shard is visible to some rank (and every rank
// has the index); otherwise it is a miss and the set is extracted again (shards of the entry that the new
// index does not list, from an extraction by another number of ranks, are then removed).
#pragma once

#include <string>
#include <vector>

#include "apps/extract.h"

namespace sanf {
class SafetensorsFile;
}

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
  int64_t size() const { return rows_; }
  int64_t dim() const { return dim_; }
  int64_t tokens() const { return tokens_; }
  const std::vector<int64_t>& labels() const { return labels_; }
  const std::vector<int64_t>& indices() const { return indices_; }  // each row's index in the dataset
  const std::string& path() const { return path_; }                 // the file, or a sharded entry's index
  bool from_cache() const { return from_cache_; }
  // Whether every rank can read every row itself (always, except a sharded entry on per-node disks).
  bool all_local() const { return all_local_; }

  // Rows `rows` as f32 host tensors: y (b, D) and P (b, N, D). (The training and scoring loops move them
  // to the device themselves, after gathering the next batch while the device works: apps/train.cpp.)
  // Every row must be readable here (all_local(), or a shard this rank sees); else it throws naming it.
  std::pair<Tensor, Tensor> batch(const std::vector<int64_t>& rows) const;
  // The same, collectively: every rank of `comm` (the ranks the set was loaded with) calls it, each with its
  // own rows (any number, none included), and gets its rows. When all_local() it is batch(rows) and sends
  // nothing; otherwise, rank after rank, the requester's row list is broadcast and each row is filled in
  // by the lowest rank that sees its shard, every other rank contributing -0.0, and one all-reduce sum
  // delivers it: x + (-0.0) is x for every x, so the rows arrive bit for bit.
  std::pair<Tensor, Tensor> batch(const std::vector<int64_t>& rows, dist::Communicator& comm) const;

  // Opens a features file (written by extract_to_file) and checks its tensors agree with each other; the
  // second form takes the file already opened (to read its metadata first).
  static FeatureSet open(const std::string& path, bool from_cache);
  static FeatureSet open(const SafetensorsFile& f, const std::string& path, bool from_cache);

 private:
  friend FeatureSet load_features(const FeatureRequest& req, dist::Communicator& comm);
  struct Shard {
    int64_t lo = 0, hi = 0;  // its rows [lo, hi)
    int server = 0;          // the lowest rank that sees it (sharded entries read across ranks)
    Tensor cls, patches;     // views of the mapped file (f32 or f16); undefined where this rank cannot see it
  };
  const Shard& shard_of(int64_t row) const;
  // Row `row` (in `sh`, visible here) into row k of y (b, D) and P (b, N, D).
  static void copy_row(const Shard& sh, int64_t row, const Tensor& y, const Tensor& P, int64_t k);
  std::vector<Shard> shards_;
  int64_t rows_ = 0, dim_ = 0, tokens_ = 0;
  std::vector<int64_t> labels_, indices_;
  std::string path_;
  bool from_cache_ = false, all_local_ = true;
  int ranks_ = 1;  // the ranks it was loaded with (Shard::server counts in them)
};

// The canonical key text of a request (see above).
std::string feature_cache_key(const FeatureRequest& req, const Dataset& ds);
// The default cache directory: $SANF_CACHE_DIR, else $XDG_CACHE_HOME/sanf/features, else
// $HOME/.cache/sanf/features.
std::string default_cache_dir();

// The tokens of `req`: from the cache when present, else extracted (the backbone is built only then) and,
// with a cache directory, stored for next time. Prints one line on stderr saying which.
//
// With several ranks in `comm` every rank calls it. A single-file entry that every rank has is used as it
// is (every rank maps all of it; the pages it reads come in as needed); else a sharded entry whose every
// shard some rank sees (above). On a miss the ranks extract together, each its part of the images
// (cut at multiples of the extraction batch, so each batch is one process's), and with a cache directory
// each rank writes its part as its shard; without one, the parts are gathered into a temporary file that
// every rank writes and maps (extract_to_file_parallel).
FeatureSet load_features(const FeatureRequest& req, dist::Communicator& comm = dist::Communicator::self());

// FNV-1a 64-bit hash of a file's bytes, streamed; 16 hex digits.
std::string file_fingerprint(const std::string& path);

}  // namespace sanf::apps
