// apps/extract.h: the backbone over a dataset: the tokens the flow will see.
//
// open_backbone takes "random:ARCH" (a seeded, timm-initialised ViT of a named architecture, optionally at
// another image or patch size: what the offline demo uses, since no pretrained weights can be downloaded
// here) or the path of a canonical checkpoint (made by `sanf convert`).
// extract_to_file streams the dataset through the backbone in batches and writes each batch's tokens
// straight into a safetensors file (SafetensorsWriter), so memory stays bounded by one batch however large
// the dataset is. The file appears only when complete (atomic); Ctrl-C between batches removes it.
//
// File layout ("sanf-features"): cls (n, D) = y_sem, patches (n, N, D) = the patch tokens, in f32 or f16;
// labels (n) and indices (n), i64: each row's class label and its index in the dataset; metadata: the
// backbone's ViT config and whatever the caller adds.
//
// BackboneOptions::precision is the precision of the backbone's matrix multiplies (inference):
//   f32   f32 GEMMs (the default; on CUDA full FP32, TF32 switched off).
//   tf32  CUDA only: cuBLAS runs the f32 GEMMs in TF32 on the tensor cores (kernels::set_tf32(true); relative
//         error ~1e-3). The switch is process-wide: it stays on for every later f32 GEMM of the process, the
//         flow's included. Refused on the CPU, which has no TF32: there it would silently be f32.
//   bf16  bf16 GEMM operands, f32 accumulation (vit::VisionTransformer::set_precision; relative error ~1e-2),
//         weights converted once when the backbone is opened. On CUDA through cuBLAS with bf16 inputs; on the
//         CPU the same arithmetic plainly (the operands rounded, then the f32 GEMM): testable there, not faster.
// open_backbone applies it; on CUDA it also sets the TF32 switch to (precision == tf32).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "apps/datasets.h"
#include "dist/dist.h"
#include "vit/vit.h"

namespace sanf::apps {

enum class BackbonePrecision { F32, TF32, BF16 };
const char* precision_name(BackbonePrecision p);  // "f32", "tf32", "bf16"
// "f32" | "tf32" | "bf16"; anything else throws, listing those.
BackbonePrecision parse_precision(const std::string& name);
// Throws (naming the option) when `p` cannot run on `device`: tf32 on the CPU.
void check_precision(BackbonePrecision p, Device device);

struct BackboneOptions {
  std::string spec;            // "random:vit-tiny" or a checkpoint path
  int64_t image_size = 0;      // 0: the architecture's (or checkpoint's)
  int64_t patch_size = 0;      // random backbones only; 0: the architecture's
  uint64_t seed = 0;           // random backbones only
  Device device = Device::CPU;
  BackbonePrecision precision = BackbonePrecision::F32;  // see above

  bool is_random() const { return spec.rfind("random:", 0) == 0; }
};
std::unique_ptr<vit::VisionTransformer> open_backbone(const BackboneOptions& opt);
// Puts an opened backbone (f32 weights, on `device`) into precision `p`, as open_backbone does.
void apply_precision(vit::VisionTransformer& model, BackbonePrecision p, Device device);
// The config open_backbone would build, without building it (reads only a checkpoint's header).
vit::ViTConfig backbone_config(const BackboneOptions& opt);

struct ExtractOptions {
  int64_t batch_size = 64;
  bool f16 = false;       // store tokens as f16 (half the disk and page cache; ~3 significant digits)
  bool progress = true;   // a progress line on stderr: done/total, img/s, ETA
};

// Samples `indices` of `ds`, in that order, batch by batch on the model's device, into `path`.
void extract_to_file(vit::VisionTransformer& model, const Dataset& ds, const std::vector<int64_t>& indices,
                     const std::string& path, const std::map<std::string, std::string>& metadata,
                     const ExtractOptions& opt);

// extract_to_file by every rank of `comm` together (each calls it with the same arguments): rank r runs the
// backbone over its contiguous part of `indices`, cut at multiples of the batch size (dist::part), so its
// batches are the ones one process would run, into a shard file in the temporary directory; then the shards
// go, rank after rank and batch by batch, through broadcasts to the ranks with `write_here`, which write
// `path` as extract_to_file writes it: on the CPU the file is bit for bit one process's. Returns when `path`
// is complete on every rank that writes it (a barrier). No rank holds more than a batch of tokens in memory;
// every rank's temporary shard holds its part. With one rank it is extract_to_file (when write_here).
void extract_to_file_parallel(vit::VisionTransformer& model, const Dataset& ds, const std::vector<int64_t>& indices,
                              const std::string& path, const std::map<std::string, std::string>& metadata,
                              const ExtractOptions& opt, dist::Communicator& comm, bool write_here);

}  // namespace sanf::apps
