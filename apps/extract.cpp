// apps/extract.cpp: backbone construction and batched, streaming feature extraction.
#include "apps/extract.h"

#include <cstdio>

#include <unistd.h>

#include <atomic>
#include <filesystem>

#include "apps/interrupt.h"
#include "apps/progress.h"
#include "core/safetensors.h"
#include "kernels/copy.h"
#include "kernels/cuda_options.h"
#include "vit/preprocess.h"

namespace sanf::apps {

namespace {
constexpr const char* kRandomPrefix = "random:";

void check_checkpoint_options(const BackboneOptions& opt) {
  SANF_CHECK(opt.patch_size == 0, "--patch-size applies to random backbones only; ", opt.spec,
             " has its own patch size");
}
}  // namespace

const char* precision_name(BackbonePrecision p) {
  switch (p) {
    case BackbonePrecision::F32: return "f32";
    case BackbonePrecision::TF32: return "tf32";
    case BackbonePrecision::BF16: return "bf16";
  }
  return "?";
}

BackbonePrecision parse_precision(const std::string& name) {
  for (BackbonePrecision p : {BackbonePrecision::F32, BackbonePrecision::TF32, BackbonePrecision::BF16})
    if (name == precision_name(p)) return p;
  SANF_FAIL("unknown precision '", name, "' (known: f32, tf32, bf16)");
}

void check_precision(BackbonePrecision p, Device device) {
  SANF_CHECK(p != BackbonePrecision::TF32 || device == Device::CUDA,
             "--precision tf32 needs --device cuda: TF32 is a tensor-core mode of the GPU, and the CPU has none "
             "(use f32, or bf16)");
}

// The model's weights are final by now: the bf16 copies are made from them.
void apply_precision(vit::VisionTransformer& model, BackbonePrecision p, Device device) {
  check_precision(p, device);
  if (device == Device::CUDA) kernels::set_tf32(p == BackbonePrecision::TF32);
  if (p == BackbonePrecision::BF16) model.set_precision(nn::MatmulPrecision::BF16);
}

vit::ViTConfig backbone_config(const BackboneOptions& opt) {
  if (opt.is_random()) {
    vit::ViTConfig cfg = vit::vit_config(opt.spec.substr(std::string(kRandomPrefix).size()));
    if (opt.image_size > 0) cfg.image_size = opt.image_size;
    if (opt.patch_size > 0) cfg.patch_size = opt.patch_size;
    cfg.validate(opt.spec);
    return cfg;
  }
  check_checkpoint_options(opt);
  SafetensorsFile f = SafetensorsFile::open(opt.spec);
  vit::ViTConfig cfg = vit::config_from_metadata(f.metadata(), opt.spec);
  if (opt.image_size > 0) cfg.image_size = opt.image_size;
  cfg.validate(opt.spec);
  return cfg;
}

std::unique_ptr<vit::VisionTransformer> open_backbone(const BackboneOptions& opt) {
  check_precision(opt.precision, opt.device);
  std::unique_ptr<vit::VisionTransformer> model;
  if (opt.is_random()) {
    Generator gen(opt.seed);
    model =
        std::make_unique<vit::VisionTransformer>(backbone_config(opt), nn::InitOptions{&gen, DType::F32, opt.device});
  } else {
    check_checkpoint_options(opt);
    model = vit::VisionTransformer::load(opt.spec, opt.image_size, DType::F32, opt.device);
  }
  apply_precision(*model, opt.precision, opt.device);
  return model;
}

namespace {
// A features file's writer: its four tensors for n images and its metadata (the ViT config, the format,
// then the caller's entries).
std::unique_ptr<SafetensorsWriter> features_writer(const std::string& path, const vit::ViTConfig& cfg, int64_t n,
                                                   DType dt, const std::map<std::string, std::string>& metadata) {
  const int64_t N = cfg.num_patches(), D = cfg.dim;
  std::map<std::string, std::string> meta = vit::config_to_metadata(cfg);
  meta["format"] = "sanf-features";
  for (const auto& [k, v] : metadata) meta[k] = v;
  return std::make_unique<SafetensorsWriter>(
      path,
      std::vector<SafetensorsWriter::Spec>{{"cls", dt, {n, D}}, {"patches", dt, {n, N, D}},
                                           {"labels", DType::I64, {n}}, {"indices", DType::I64, {n}}},
      meta);
}
}  // namespace

void extract_to_file(vit::VisionTransformer& model, const Dataset& ds, const std::vector<int64_t>& indices,
                     const std::string& path, const std::map<std::string, std::string>& metadata,
                     const ExtractOptions& opt) {
  SANF_CHECK(opt.batch_size > 0, "batch size must be positive, got ", opt.batch_size);
  const vit::ViTConfig& cfg = model.config();
  const int64_t n = int64_t(indices.size()), N = cfg.num_patches();
  const DType dt = opt.f16 ? DType::F16 : DType::F32;
  const auto writer = features_writer(path, cfg, n, dt, metadata);
  SafetensorsWriter& w = *writer;
  Tensor labels = Tensor::empty({n}, DType::I64), rows = Tensor::empty({n}, DType::I64);
  int64_t* lab = labels.data<int64_t>();
  int64_t* idx = rows.data<int64_t>();
  const Device dev = model.cls_token.device();
  NoGradGuard no_grad;
  Progress progress("extract", n, opt.progress);
  // Batch `start`'s images, decoded and preprocessed on the host; fills its labels and indices.
  auto load = [&](int64_t start) {
    const int64_t b = std::min(opt.batch_size, n - start);
    std::vector<Tensor> images;
    for (int64_t k = 0; k < b; ++k) {
      const int64_t i = indices[size_t(start + k)];
      SANF_CHECK(i >= 0 && i < ds.size(), "extract: index ", i, " outside the dataset's ", ds.size(), " images");
      images.push_back(ds.image(i));
      lab[start + k] = ds.label(i);
      idx[start + k] = i;
    }
    return vit::preprocess(images, cfg);
  };
  // Writes the host tokens (b, 1+N, D) of the batch that starts at `start`.
  auto write = [&](const Tensor& tokens, int64_t start) {
    w.write_rows("cls", start, select(tokens, 1, 0));
    w.write_rows("patches", start, narrow(tokens, 1, 1, N));
    progress.update(start + tokens.shape()[0]);
  };
  // A two-stage pipeline, so that on a GPU the host's work overlaps the device's. Once batch i's forward
  // is queued (kernel launches return at once on CUDA), the host writes batch i-1's tokens and decodes
  // and uploads batch i+1, and only then waits for batch i's tokens (the copy to the host waits for the
  // kernels queued before it: batch i's forward and batch i+1's upload). On the CPU the forward runs where
  // it is called and nothing overlaps; the order of the work is the same, and one extra batch of tokens is
  // held until written.
  Tensor input = n > 0 ? to(load(0), dev) : Tensor();
  Tensor pending;  // batch i-1's tokens on the host, not yet written
  int64_t pending_start = 0;
  for (int64_t start = 0; start < n; start += opt.batch_size) {
    check_interrupt(cat("while extracting features into ", path, " (", start, "/", n, " images done)"));
    Tensor out = to(model.forward(input), dt);  // (b, 1+N, D) on the device
    if (pending.defined()) write(pending, pending_start);
    const int64_t next = start + opt.batch_size;
    input = next < n ? to(load(next), dev) : Tensor();
    pending = to(out, Device::CPU), pending_start = start;
  }
  if (pending.defined()) write(pending, pending_start);
  progress.finish();
  w.write_all("labels", labels);
  w.write_all("indices", rows);
  w.commit();
}

void extract_to_file_parallel(vit::VisionTransformer& model, const Dataset& ds, const std::vector<int64_t>& indices,
                              const std::string& path, const std::map<std::string, std::string>& metadata,
                              const ExtractOptions& opt, dist::Communicator& comm, bool write_here) {
  if (comm.size() == 1) {
    if (write_here) extract_to_file(model, ds, indices, path, metadata, opt);
    return;
  }
  SANF_CHECK(opt.batch_size > 0, "batch size must be positive, got ", opt.batch_size);
  const vit::ViTConfig& cfg = model.config();
  const int64_t n = int64_t(indices.size()), N = cfg.num_patches(), D = cfg.dim;
  const DType dt = opt.f16 ? DType::F16 : DType::F32;
  // This rank's part, into its own temporary shard (removed when done; the mapping stays valid until then).
  const dist::Part mine = dist::part(n, opt.batch_size, comm.rank(), comm.size());
  static std::atomic<int> counter{0};
  const std::string shard_path = (std::filesystem::temp_directory_path() /
                                  cat("sanf-shard-", ::getpid(), "-", counter++, ".safetensors")).string();
  struct RemoveShard {  // on every path out, errors included
    const std::string& path;
    ~RemoveShard() { std::remove(path.c_str()); }
  } remove_shard{shard_path};
  ExtractOptions shard_opt = opt;
  shard_opt.progress = opt.progress && comm.is_root();
  extract_to_file(model, ds, std::vector<int64_t>(indices.begin() + mine.lo, indices.begin() + mine.hi), shard_path,
                  {}, shard_opt);
  Tensor shard_cls, shard_patches, shard_ids;  // this rank's rows: cls, patches, (labels; indices)
  {
    SafetensorsFile f = SafetensorsFile::open(shard_path);
    shard_cls = f.get("cls");
    shard_patches = f.get("patches");
    shard_ids = Tensor::empty({2, mine.size()}, DType::I64);
    kernels::copy(select(shard_ids, 0, 0), f.get("labels"));
    kernels::copy(select(shard_ids, 0, 1), f.get("indices"));
  }
  std::unique_ptr<SafetensorsWriter> w = write_here ? features_writer(path, cfg, n, dt, metadata) : nullptr;
  // Rank after rank, batch by batch: the owner copies its rows into the buffers, everyone receives them.
  for (int r = 0; r < comm.size(); ++r) {
    const dist::Part p = dist::part(n, opt.batch_size, r, comm.size());
    for (int64_t start = p.lo; start < p.hi; start += opt.batch_size) {
      check_interrupt(cat("while gathering the features of ", path, " (", start, "/", n, " images done)"));
      const int64_t b = std::min(opt.batch_size, p.hi - start);
      Tensor c = Tensor::empty({b, D}, dt), P = Tensor::empty({b, N, D}, dt), ids = Tensor::empty({2, b}, DType::I64);
      if (r == comm.rank()) {
        kernels::copy(c, narrow(shard_cls, 0, start - p.lo, b));
        kernels::copy(P, narrow(shard_patches, 0, start - p.lo, b));
        kernels::copy(ids, narrow(shard_ids, 1, start - p.lo, b));
      }
      comm.broadcast(c, r);
      comm.broadcast(P, r);
      comm.broadcast(ids, r);
      if (!w) continue;
      w->write_rows("cls", start, c);
      w->write_rows("patches", start, P);
      w->write_rows("labels", start, select(ids, 0, 0));
      w->write_rows("indices", start, select(ids, 0, 1));
    }
  }
  if (w) w->commit();
  comm.barrier();
}

}  // namespace sanf::apps
