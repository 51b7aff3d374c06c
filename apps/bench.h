// apps/bench.h: `sanf bench ...`: the benchmarks, one JSON line per figure.
//
// Every line has "impl" ("sanf"), "what", "threads" and its figure; the committed peer scripts in bench/
// print the same fields for the same work (PyTorch: bench_vit_torch.py, bench_flow_torch.py; numpy's BLAS:
// bench_gemm_numpy.py), and bench/cpu_report.sh runs everything in one session and prints the table of
// docs/PERFORMANCE.md. Timing is bench/bench_common.h's: the median of repeated calls after warm-up.
//
//   fma      the machine's peak: independent FMA chains per thread, at 1 thread and at all threads
//   gemm     f32 GEMM at the ViT-B/16 shapes (batch 8: M = 8 * 197 token rows), laid out as linear's
//            x W^T, and optionally as plain A B; GFLOP/s = 2 M N K / time
//   vit      a ViT forward (random weights) at a batch and GEMM precision (f32, tf32, bf16): img/s
//   flow     one SANF flow training step (forward, backward, Adam) and one scoring pass at the paper's
//            ViT-B shapes (batch 32, D 768, 196 patch tokens, H 768, K 4; --dim 1024 for ViT-L's)
//   extract  `sanf extract` of the first N images of a dataset into a temporary file (deleted after):
//            img/s and the process's peak resident memory, which must not grow with N
//   dist     run alone or under `mpirun -np N` (every line then also has "ranks"; rank 0 prints): the
//            extraction by all ranks together (extract_to_file_parallel, img/s), the data-parallel training
//            step (apps/train.h train_step on each rank's part of a global batch of 32, ms), and with several
//            ranks the step's all-reduce alone (one flat f32 buffer of the flow's parameters: bytes, ms, GB/s)
#pragma once

#include <cstdint>
#include <string>

#include "core/tensor.h"

namespace sanf::apps {

void bench_fma();

struct GemmBenchOptions {
  Device device = Device::CPU;
  int64_t rows = 8 * 197;  // M
  bool all_layouts = false;  // also A B (no transpose), A^T B (the weight gradient)
  bool quick = false;
  std::string tile = "auto";  // the CPU f32 micro-kernel's tile: auto | 6x16 | 12x32 (kernels/matmul.h)
};
void bench_gemm(const GemmBenchOptions& opt);

// One model (a random ViT-L takes seconds to draw), then one JSON line per batch size and setting of the switches.
struct VitBenchOptions {
  std::string arch = "vit-base";
  Device device = Device::CPU;
  std::vector<int64_t> batches{8};
  int64_t image_size = 0, reps = 3;
  std::string precision = "f32";  // the backbone's GEMMs: f32 | tf32 (CUDA) | bf16 (apps/extract.h)
  // bf16 on CUDA: the fused attention kernel (kernels/fast/attention.h) as set at start-up ("default"), "off",
  // "on", or "both" (each batch with it off, then on).
  std::string fused_attention = "default";
  // On CUDA: cuBLASLt's bias epilogue (and in bf16 its residual input; kernels/cuda_options.h), the same
  // choices.
  std::string cublaslt = "default";
};
void bench_vit(const VitBenchOptions& opt);

// dim: D and H (768: ViT-B, the paper; 1024: ViT-L).
void bench_flow(Device device, bool quick, int64_t dim = 768, int64_t tokens = 196);

struct ExtractBenchOptions {
  std::string dataset = "fashion-mnist", data_dir = "/usr/share/datasets/fashion-mnist";
  std::string arch = "vit-tiny";
  int64_t limit = 1000, image_size = 32, patch_size = 4, batch_size = 128;
  Device device = Device::CPU;
};
void bench_extract(const ExtractBenchOptions& opt);
// `sanf predict` end to end on the same images: `limit` test images written as PNG files to a temporary
// folder first (not timed), then decoding, the backbone, a fresh K = 4 flow and predictions.csv, timed.
void bench_predict(const ExtractBenchOptions& opt);

struct DistBenchOptions {
  ExtractBenchOptions extract{.limit = 256, .batch_size = 32};  // the extraction: vit-tiny at 32x32, patch 4
  int64_t dim = 768, tokens = 196, batch = 32;  // the training step's flow (K 4, H = D) and global batch
  int reps = 10;
};
// Every rank calls it with the same options (the reps are counted, not timed, so the ranks stay in step).
void bench_dist(const DistBenchOptions& opt);

}  // namespace sanf::apps
