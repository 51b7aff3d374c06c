// apps/bench.cpp: `sanf bench fma|gemm|vit|flow|extract` (see apps/bench.h).
#include "apps/bench.h"

#include "apps/image_io.h"
#include "apps/predict.h"

#include <immintrin.h>
#include <omp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <numeric>

#include "apps/extract.h"
#include "apps/train.h"
#include "dist/dist.h"
#include "autograd/ops.h"
#include "bench/bench_common.h"
#include "flows/flow.h"
#include "kernels/fast/attention.h"
#include "kernels/matmul.h"
#include "nn/adam.h"

namespace sanf::apps {

// ---- fma: the peak ------------------------------------------------------------------------------------------
//
// kChains independent accumulators per thread, each updated by one FMA per iteration: enough chains to
// cover the FMA latency (4-5 cycles) times the number of FMA pipes (2), so the loop runs at the pipes'
// throughput. Nothing is loaded or stored in the loop. The result is summed and printed so the work cannot
// be optimised away.
namespace {
constexpr int kChains = 12;
constexpr int64_t kFmaIters = 20'000'000;

__attribute__((target("avx2,fma"))) float fma_chains_avx2(int64_t iters) {
  __m256 acc[kChains];
  const __m256 b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
  for (int i = 0; i < kChains; ++i) acc[i] = _mm256_set1_ps(float(i));
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < kChains; ++i) acc[i] = _mm256_fmadd_ps(acc[i], b, c);
  }
  __m256 s = acc[0];
  for (int i = 1; i < kChains; ++i) s = _mm256_add_ps(s, acc[i]);
  alignas(32) float o[8];
  _mm256_store_ps(o, s);
  return o[0];
}

__attribute__((target("avx512f"))) float fma_chains_avx512(int64_t iters) {
  __m512 acc[kChains];
  const __m512 b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(float(i));
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < kChains; ++i) acc[i] = _mm512_fmadd_ps(acc[i], b, c);
  }
  __m512 s = acc[0];
  for (int i = 1; i < kChains; ++i) s = _mm512_add_ps(s, acc[i]);
  alignas(64) float o[16];
  _mm512_store_ps(o, s);
  return o[0];
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

void bench_fma() {
  const bool avx512 = __builtin_cpu_supports("avx512f");
  SANF_CHECK(avx512 || (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")),
             "bench fma: this CPU has neither AVX2+FMA nor AVX-512");
  const int lanes = avx512 ? 16 : 8;
  const int max_threads = omp_get_max_threads();
  for (int threads : {1, max_threads}) {
    double best = 0, sink = 0;
    for (int rep = 0; rep < 3; ++rep) {  // the best of three: the peak is what the machine can do
      const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads) reduction(+ : sink)
      sink += avx512 ? fma_chains_avx512(kFmaIters) : fma_chains_avx2(kFmaIters);
      best = std::max(best, double(threads) * kFmaIters * kChains * lanes * 2 / seconds_since(t0) / 1e9);
    }
    bench::emit({{"what", "fma_peak"}, {"isa", avx512 ? "avx512" : "avx2"}, {"threads", threads},
                 {"gflops", bench::rounded(best, 1)}, {"check", sink}});
    if (max_threads == 1) break;  // (one line, not the same figure twice)
  }
}

// ---- gemm ---------------------------------------------------------------------------------------------------

void bench_gemm(const GemmBenchOptions& opt) {
  using kernels::cpu::GemmTile;
  SANF_CHECK(opt.tile == "auto" || opt.tile == "6x16" || opt.tile == "12x32", "[bench gemm] unknown --tile '",
             opt.tile, "' (auto, 6x16 or 12x32)");
  kernels::cpu::set_gemm_tile(opt.tile == "6x16" ? GemmTile::Narrow : opt.tile == "12x32" ? GemmTile::Wide
                                                                                          : GemmTile::Auto);
  const std::string tile = opt.device == Device::CPU ? kernels::cpu::gemm_tile_name() : "cublas";
  struct KN {
    int64_t K, N;
    const char* role;
  };
  // The ViT-B block's linear layers: qkv (768 -> 2304), proj (768 -> 768), fc1 (768 -> 3072), fc2 (3072 -> 768).
  const KN shapes[] = {{768, 768, "proj"}, {768, 2304, "qkv"}, {768, 3072, "fc1"}, {3072, 768, "fc2"}};
  const int64_t M = opt.rows;
  Generator gen(0);
  const bench::Settings s{opt.device, 2, opt.quick ? 5 : 30, opt.quick ? 0.3 : 2.0};
  for (const KN& kn : shapes) {
    const int64_t K = kn.K, N = kn.N;
    Tensor a = randn({M, K}, DType::F32, opt.device, &gen), w = randn({N, K}, DType::F32, opt.device, &gen);
    Tensor b = randn({K, N}, DType::F32, opt.device, &gen), c = Tensor::empty({M, N}, DType::F32, opt.device);
    Tensor at = randn({K, M}, DType::F32, opt.device, &gen);
    struct Layout {
      const char* name;  // numpy's expression for the same product
      bool ta, tb;
      const Tensor *A, *B;
    };
    std::vector<Layout> layouts = {{"a @ w.T", false, true, &a, &w}};
    if (opt.all_layouts) {
      layouts.push_back({"a @ b", false, false, &a, &b});
      layouts.push_back({"at.T @ b", true, false, &at, &b});
    }
    for (const Layout& l : layouts) {
      kernels::GemmArgs g;
      g.trans_a = l.ta, g.trans_b = l.tb;
      g.M = M, g.N = N, g.K = K;
      g.A = l.A->data_ptr(), g.lda = l.A->shape()[1];
      g.B = l.B->data_ptr(), g.ldb = l.B->shape()[1];
      g.C = c.data_ptr(), g.ldc = N;
      const double ms = bench::median_ms(s, [&] { kernels::gemm(opt.device, DType::F32, g); });
      bench::emit({{"what", "gemm"}, {"device", device_name(opt.device)}, {"role", kn.role}, {"M", M}, {"K", K},
                   {"N", N}, {"layout", l.name}, {"tile", tile}, {"threads", omp_get_max_threads()},
                   {"ms", bench::rounded(ms, 3)},
                   {"gflops", bench::rounded(2.0 * double(M) * double(N) * double(K) / ms / 1e6, 1)}});
    }
  }
}

// ---- vit ----------------------------------------------------------------------------------------------------

void bench_vit(const VitBenchOptions& opt) {
  BackboneOptions bo{"random:" + opt.arch, opt.image_size, 0, 0, opt.device, parse_precision(opt.precision)};
  auto model = open_backbone(bo);  // applies the precision (bf16 weight copies, the TF32 switch)
  const vit::ViTConfig& cfg = model->config();
  // A switch's settings: -1 as set at start-up; 0 off; 1 on.
  auto settings = [](const std::string& choice) {
    return choice == "off" ? std::vector<int>{0}
           : choice == "on" ? std::vector<int>{1}
           : choice == "both" ? std::vector<int>{0, 1}
                              : std::vector<int>{-1};
  };
  const std::vector<int> fused_settings = settings(opt.fused_attention), lt_settings = settings(opt.cublaslt);
  const bool fused_before = kernels::fused_attention_enabled(), lt_before = kernels::cublaslt_enabled();
  // Put back as they were at the end (also when a forward throws).
  const kernels::ScopedSwitch keep_fused(kernels::set_fused_attention, kernels::fused_attention_enabled, fused_before);
  const kernels::ScopedSwitch keep_lt(kernels::set_cublaslt, kernels::cublaslt_enabled, lt_before);
  NoGradGuard no_grad;
  for (const int64_t batch : opt.batches) {
    SANF_CHECK(batch > 0, "bench vit: batch sizes must be positive, got ", batch);
    Generator gen(1);
    Tensor x = randn({batch, 3, cfg.image_size, cfg.image_size}, DType::F32, opt.device, &gen);
    for (const int lt_setting : lt_settings) {
      for (const int setting : fused_settings) {
        kernels::set_cublaslt(lt_setting < 0 ? lt_before : lt_setting == 1);
        kernels::set_fused_attention(setting < 0 ? fused_before : setting == 1);
        const long long lt0 = kernels::cublaslt_gemm_count();
        // One warm-up, then exactly `reps` timed forwards (a ViT-B batch takes seconds: the count decides,
        // not a time budget).
        const double ms = bench::median_ms({opt.device, 1, int(std::max<int64_t>(opt.reps, 1)), 1e30},
                                           [&] { Tensor y = model->forward(x); });
        const double s = ms / 1e3;
        // Whether the bf16 attention ran fused (kernels/fast/attention.h), and whether cuBLASLt ran GEMMs.
        const bool fused = bo.precision == BackbonePrecision::BF16 &&
                           kernels::fused_attention_used(opt.device, cfg.num_patches() + 1, cfg.dim / cfg.heads);
        const bool lt = kernels::cublaslt_gemm_count() > lt0;
        bench::emit({{"what", "vit_forward"}, {"arch", opt.arch}, {"image_size", cfg.image_size}, {"batch", batch},
                     {"device", device_name(opt.device)}, {"precision", precision_name(bo.precision)},
                     {"fused_attention", fused}, {"cublaslt", lt}, {"threads", omp_get_max_threads()},
                     {"seconds", bench::rounded(s, 4)}, {"img_per_s", bench::rounded(double(batch) / s, 3)}});
      }
    }
  }
}

// ---- flow ---------------------------------------------------------------------------------------------------

void bench_flow(Device device, bool quick, int64_t dim, int64_t tokens) {
  SANF_CHECK(dim > 0 && dim % 8 == 0, "bench flow: --dim must be a positive multiple of 8, got ", dim);
  SANF_CHECK(tokens > 0, "bench flow: --tokens must be positive, got ", tokens);
  const int64_t B = 32, D = dim, N = tokens;
  flows::FlowConfig cfg;
  cfg.dim = D, cfg.tokens = N, cfg.layers = 4, cfg.hidden = D, cfg.heads = 4, cfg.seed = 0;
  flows::Flow flow(cfg, DType::F32, device);
  nn::Adam opt(flow.named_parameters(), {.lr = 5e-5, .beta1 = 0.8, .beta2 = 0.8, .eps = 1e-4, .weight_decay = 1e-5});
  Generator gen(1);
  Tensor y = randn({B, D}, DType::F32, device, &gen), P = randn({B, N, D}, DType::F32, device, &gen);
  const std::string shape = cat("B 32, D ", D, ", N ", N, ", H ", D, ", K 4");
  const bench::Settings s{device, quick ? 1 : 2, quick ? 3 : 20, quick ? 1.0 : 10.0};
  bench::report(s, "flow_train_step", shape, [&] {
    opt.zero_grad();
    backward(flows::nll_loss(flow.forward(y, P)));
    opt.step();
  });
  // What training runs per step (apps/train.h): the batch uploaded from the host, the loss read back, the
  // gradient norm checked, Adam, the gradients cleared. Its peers have no such line.
  const StepBatch host_batch{to(y, Device::CPU), to(P, Device::CPU), B};
  dist::Communicator& one = dist::Communicator::self();
  bench::report(s, "flow_train_step_full", shape, [&] {
    train_step(flow, opt, host_batch, one, device, nullptr, [](const std::string& what) { return what; });
  });
  bench::report(s, "flow_score", shape, [&] {
    NoGradGuard ng;
    flows::nll(flow.forward(y, P));
  });
}

// ---- extract ------------------------------------------------------------------------------------------------

void bench_extract(const ExtractBenchOptions& opt) {
  auto ds = open_dataset(opt.dataset, opt.data_dir, Split::Test, DatasetOptions{});
  const int64_t n = std::min(opt.limit, ds->size());
  SANF_CHECK(n > 0, "bench extract: no images in ", opt.data_dir);
  BackboneOptions bo{"random:" + opt.arch, opt.image_size, opt.patch_size, 0, opt.device};
  auto model = open_backbone(bo);
  std::vector<int64_t> idx(size_t(n), 0);
  std::iota(idx.begin(), idx.end(), int64_t(0));
  const std::filesystem::path out =
      std::filesystem::temp_directory_path() / ("sanf-bench-extract-" + std::to_string(::getpid()) + ".safetensors");
  ExtractOptions eo;
  eo.batch_size = opt.batch_size;
  eo.progress = false;
  const auto t0 = std::chrono::steady_clock::now();
  try {
    extract_to_file(*model, *ds, idx, out.string(), {}, eo);
  } catch (...) {
    std::filesystem::remove(out);
    throw;
  }
  const double s = seconds_since(t0);
  const auto bytes = std::filesystem::file_size(out);
  std::filesystem::remove(out);
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);  // ru_maxrss: the process's peak resident set, KiB on Linux
  bench::emit({{"what", "extract"}, {"arch", opt.arch}, {"image_size", model->config().image_size}, {"images", n},
               {"batch", opt.batch_size}, {"device", device_name(opt.device)}, {"threads", omp_get_max_threads()},
               {"seconds", bench::rounded(s, 2)}, {"img_per_s", bench::rounded(double(n) / s, 1)},
               {"output_mib", bench::rounded(double(bytes) / (1 << 20), 1)},
               {"peak_rss_mib", bench::rounded(double(ru.ru_maxrss) / 1024, 1)}});
}

void bench_predict(const ExtractBenchOptions& opt) {
  auto ds = open_dataset(opt.dataset, opt.data_dir, Split::Test, DatasetOptions{});
  const int64_t n = std::min(opt.limit, ds->size());
  SANF_CHECK(n > 0, "bench predict: no images in ", opt.data_dir);
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("sanf-bench-predict-" + std::to_string(::getpid()));
  struct Cleanup {
    std::filesystem::path dir;
    ~Cleanup() { std::filesystem::remove_all(dir); }
  } cleanup{dir};
  std::filesystem::create_directories(dir / "images");
  for (int64_t i = 0; i < n; ++i) write_png((dir / "images" / cat(i, ".png")).string(), ds->image(i));
  Detector d;
  d.backbone = open_backbone({"random:" + opt.arch, opt.image_size, opt.patch_size, 0, opt.device});
  flows::FlowConfig fc;
  fc.dim = d.backbone->config().dim;
  fc.tokens = d.backbone->config().num_patches();
  d.flow = std::make_unique<flows::Flow>(fc, DType::F32, opt.device);
  d.backbone_batch = opt.batch_size;
  d.device = opt.device;
  Threshold t;
  t.kind = "value";
  PredictOptions po;
  po.progress = false;
  const auto t0 = std::chrono::steady_clock::now();
  auto files = open_image_files({(dir / "images").string()});
  write_predictions_csv((dir / "predictions.csv").string(), predict(d, {{files.get(), ""}}, t, po), t);
  const double s = seconds_since(t0);
  bench::emit({{"what", "predict"}, {"arch", opt.arch}, {"image_size", d.backbone->config().image_size}, {"images", n},
               {"batch", opt.batch_size}, {"device", device_name(opt.device)}, {"threads", omp_get_max_threads()},
               {"seconds", bench::rounded(s, 2)}, {"img_per_s", bench::rounded(double(n) / s, 1)}});
}

// ---- dist ---------------------------------------------------------------------------------------------------

void bench_dist(const DistBenchOptions& opt) {
  dist::Communicator& comm = dist::Communicator::world();
  const ExtractBenchOptions& eo = opt.extract;
  SANF_CHECK(opt.dim > 0 && opt.dim % 8 == 0 && opt.tokens > 0 && opt.batch > 0 && opt.reps > 0,
             "bench dist: --dim must be a positive multiple of 8 and --tokens, --batch, --reps positive");
  auto print = [&](nlohmann::ordered_json fields) {
    if (!comm.is_root()) return;
    fields["ranks"] = comm.size(), fields["threads"] = omp_get_max_threads();
    fields["device"] = device_name(eo.device);
    bench::emit(fields);
  };
  // Extraction: each rank its part of the images, rank 0 writing the file (deleted after).
  {
    auto ds = open_dataset(eo.dataset, eo.data_dir, Split::Test, DatasetOptions{});
    const int64_t n = std::min(eo.limit, ds->size());
    SANF_CHECK(n > 0, "bench dist: no images in ", eo.data_dir);
    auto model = open_backbone(BackboneOptions{"random:" + eo.arch, eo.image_size, eo.patch_size, 0, eo.device});
    std::vector<int64_t> idx(size_t(n), 0);
    std::iota(idx.begin(), idx.end(), int64_t(0));
    const std::filesystem::path out = std::filesystem::temp_directory_path() /
                                      ("sanf-bench-dist-" + std::to_string(::getpid()) + ".safetensors");
    ExtractOptions xo;
    xo.batch_size = eo.batch_size;
    xo.progress = false;
    comm.barrier();
    const auto t0 = std::chrono::steady_clock::now();
    try {
      extract_to_file_parallel(*model, *ds, idx, out.string(), {}, xo, comm, comm.is_root());
    } catch (...) {
      std::filesystem::remove(out);
      throw;
    }
    const double secs = seconds_since(t0);
    std::filesystem::remove(out);
    print({{"what", "dist_extract"}, {"arch", eo.arch}, {"image_size", model->config().image_size}, {"images", n},
           {"batch", eo.batch_size}, {"seconds", bench::rounded(secs, 3)},
           {"img_per_s", bench::rounded(double(n) / secs, 2)}});
  }
  // The training step: every rank draws the same global batch and takes its part of it.
  flows::FlowConfig cfg;
  cfg.dim = opt.dim, cfg.tokens = opt.tokens, cfg.layers = 4, cfg.hidden = opt.dim, cfg.heads = 4, cfg.seed = 0;
  flows::Flow flow(cfg, DType::F32, eo.device);
  nn::Adam adam(flow.named_parameters(), {.lr = 5e-5, .beta1 = 0.8, .beta2 = 0.8, .eps = 1e-4, .weight_decay = 1e-5});
  Generator gen(1);
  const Tensor y = randn({opt.batch, opt.dim}, DType::F32, Device::CPU, &gen),
               P = randn({opt.batch, opt.tokens, opt.dim}, DType::F32, Device::CPU, &gen);
  const dist::Part mine = dist::part(opt.batch, 1, comm.rank(), comm.size());
  const StepBatch batch{contiguous(narrow(y, 0, mine.lo, mine.size())),
                        contiguous(narrow(P, 0, mine.lo, mine.size())), opt.batch};
  const bench::Settings settings{eo.device, 1, opt.reps, 1e30};  // a fixed count of reps on every rank
  const std::string shape = cat("B ", opt.batch, ", D ", opt.dim, ", N ", opt.tokens, ", H ", opt.dim, ", K 4");
  const double step_ms = bench::median_ms(settings, [&] {
    train_step(flow, adam, batch, comm, eo.device, nullptr, [](const std::string& what) { return what; });
  });
  print({{"what", "dist_train_step"}, {"shape", shape}, {"rows_per_rank", mine.size()},
         {"ms", bench::rounded(step_ms, 3)}});
  // The step's all-reduce alone: one f32 buffer of every parameter (plus a flag each and the loss). One
  // process has none to time.
  if (comm.size() == 1) return;
  int64_t numel = 0, params = 0;
  for (auto& [name, p] : flow.named_parameters()) numel += p->numel(), ++params;
  Tensor flat = zeros({numel + params + 1}, DType::F32, eo.device);
  const double ar_ms = bench::median_ms(settings, [&] { comm.all_reduce_sum(flat); });
  const double bytes = double(flat.numel()) * 4;
  print({{"what", "dist_allreduce"}, {"shape", shape}, {"parameters", numel}, {"bytes", int64_t(bytes)},
         {"ms", bench::rounded(ar_ms, 3)}, {"gb_per_s", bench::rounded(bytes / (ar_ms * 1e6), 3)}});
}

}  // namespace sanf::apps
