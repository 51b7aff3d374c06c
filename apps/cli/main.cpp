// apps/cli/main.cpp: the `sanf` command line.
//
//   sanf convert --from timm|hf|torchvision IN.safetensors OUT.safetensors [--arch A] [--heads H]
//                [--mean M,M,M] [--std S,S,S] [--ln-eps E]
//   sanf extract --backbone CKPT|random:ARCH --dataset NAME --data-dir DIR --out FEATS.safetensors
//                [--split train|test] [--batch-size B] [--image-size S] [--patch-size P] [--limit N]
//   sanf bench vit [--arch vit-base] [--batch 8] [--image-size 224] [--reps 3] [--device cpu|cuda]
//
// Exit codes: 0 success, 2 usage errors (with the usage), 1 runtime errors (one line on stderr).
// This is the only place errors become exit codes.
#include <CLI/CLI.hpp>
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <sstream>

#include "apps/extract.h"
#include "core/safetensors.h"
#include "vit/convert.h"

using namespace sanf;

namespace {

std::vector<double> parse_triple(const std::string& s, const char* what) {
  std::vector<double> v;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      size_t used = 0;
      v.push_back(std::stod(item, &used));
      if (used != item.size()) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      throw CLI::ValidationError(what, "'" + s + "' is not three comma-separated numbers");
    }
  }
  if (v.size() != 3) throw CLI::ValidationError(what, "'" + s + "' is not three comma-separated numbers");
  return v;
}

Device parse_device(const std::string& s) { return s == "cuda" ? Device::CUDA : Device::CPU; }

struct ConvertArgs {
  std::string from = "timm", in, out, arch, mean, std;
  int64_t heads = 0;
  double ln_eps = 0;
};

int run_convert(const ConvertArgs& a) {
  vit::ConvertOptions o;
  o.source = a.from;
  o.arch = a.arch;
  o.heads = a.heads;
  o.ln_eps = a.ln_eps;
  if (!a.mean.empty()) o.mean = parse_triple(a.mean, "--mean");
  if (!a.std.empty()) o.std = parse_triple(a.std, "--std");
  vit::convert_checkpoint(a.in, a.out, o);
  SafetensorsFile f = SafetensorsFile::open(a.out);
  std::printf("wrote %s: %zu tensors, arch %s, image %s, patch %s, dim %s, depth %s, heads %s\n", a.out.c_str(),
              f.entries().size(), f.metadata().at("arch").c_str(), f.metadata().at("image_size").c_str(),
              f.metadata().at("patch_size").c_str(), f.metadata().at("dim").c_str(), f.metadata().at("depth").c_str(),
              f.metadata().at("heads").c_str());
  return 0;
}

struct ExtractArgs {
  apps::BackboneOptions backbone;
  std::string dataset, data_dir, out, split = "test", device = "cpu";
  int64_t batch_size = 64, limit = 0;
};

int run_extract(ExtractArgs a) {
  a.backbone.device = parse_device(a.device);
  auto model = apps::open_backbone(a.backbone);
  auto ds = apps::open_dataset(a.dataset, a.data_dir, a.split == "train" ? apps::Split::Train : apps::Split::Test);
  std::vector<int64_t> idx;
  const int64_t n = a.limit > 0 ? std::min(a.limit, ds->size()) : ds->size();
  for (int64_t i = 0; i < n; ++i) idx.push_back(i);
  if (a.backbone.spec.rfind("random:", 0) == 0)
    std::fprintf(stderr, "note: %s is a randomly initialised backbone (seed %llu), not pretrained weights\n",
                 a.backbone.spec.c_str(), (unsigned long long)a.backbone.seed);
  apps::Features f = apps::extract_features(*model, *ds, idx, a.batch_size);
  std::map<std::string, std::string> meta = vit::config_to_metadata(model->config());
  meta["format"] = "sanf-features";
  meta["backbone"] = a.backbone.spec;
  meta["dataset"] = a.dataset;
  meta["split"] = a.split;
  save_safetensors(a.out, {{"cls", f.cls}, {"patches", f.patches}, {"labels", f.labels}}, meta);
  std::printf("wrote %s: %lld images, cls %s, patches %s\n", a.out.c_str(), (long long)n,
              shape_str(f.cls.shape()).c_str(), shape_str(f.patches.shape()).c_str());
  return 0;
}

struct BenchArgs {
  std::string arch = "vit-base", device = "cpu";
  int64_t batch = 8, image_size = 0, reps = 3;
};

// One JSON line per run: the median over `reps` timed forwards after one warm-up.
int run_bench_vit(const BenchArgs& a) {
  apps::BackboneOptions bo{"random:" + a.arch, a.image_size, 0, 0, parse_device(a.device)};
  auto model = apps::open_backbone(bo);
  const vit::ViTConfig& cfg = model->config();
  Generator gen(1);
  Tensor x = randn({a.batch, 3, cfg.image_size, cfg.image_size}, DType::F32, bo.device, &gen);
  NoGradGuard no_grad;
  auto once = [&] {
    Tensor y = model->forward(x);
    if (bo.device == Device::CUDA) cuda_synchronize();
  };
  once();
  std::vector<double> t;
  for (int64_t r = 0; r < std::max<int64_t>(a.reps, 1); ++r) {
    auto t0 = std::chrono::steady_clock::now();
    once();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  const double s = t[t.size() / 2];
  std::printf(
      "{\"impl\": \"sanf\", \"what\": \"vit_forward\", \"arch\": \"%s\", \"image_size\": %lld, \"batch\": %lld, "
      "\"device\": \"%s\", \"threads\": %d, \"seconds\": %.4f, \"img_per_s\": %.3f}\n",
      a.arch.c_str(), (long long)cfg.image_size, (long long)a.batch, a.device.c_str(), omp_get_max_threads(), s,
      double(a.batch) / s);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sanf: SANF-AD anomaly detection on a from-scratch C++/CUDA deep-learning framework"};
  app.require_subcommand(1);

  ConvertArgs ca;
  auto* convert = app.add_subcommand("convert", "convert a timm / Hugging Face / torchvision ViT to a sanf checkpoint");
  convert->add_option("--from", ca.from, "naming of the input's tensors")->check(CLI::IsMember({"timm", "hf", "torchvision"}));
  convert->add_option("in", ca.in, "input .safetensors")->required()->check(CLI::ExistingFile);
  convert->add_option("out", ca.out, "output .safetensors")->required();
  convert->add_option("--arch", ca.arch, "expected architecture (vit-tiny, vit-small, vit-base, vit-large)");
  convert->add_option("--heads", ca.heads, "attention heads (default: inferred)");
  convert->add_option("--mean", ca.mean, "normalisation mean, M,M,M");
  convert->add_option("--std", ca.std, "normalisation std, S,S,S");
  convert->add_option("--ln-eps", ca.ln_eps, "LayerNorm epsilon (default: the source's)");

  ExtractArgs ea;
  auto* extract = app.add_subcommand("extract", "run the backbone over a dataset and save its tokens");
  extract->add_option("--backbone", ea.backbone.spec, "checkpoint path or random:ARCH")->required();
  extract->add_option("--dataset", ea.dataset, "dataset name")->required()->check(CLI::IsMember(apps::dataset_names()));
  extract->add_option("--data-dir", ea.data_dir, "dataset directory")->required();
  extract->add_option("--out", ea.out, "output .safetensors (cls, patches, labels)")->required();
  extract->add_option("--split", ea.split, "train or test")->check(CLI::IsMember({"train", "test"}));
  extract->add_option("--batch-size", ea.batch_size, "images per batch")->check(CLI::PositiveNumber);
  extract->add_option("--image-size", ea.backbone.image_size, "backbone input size");
  extract->add_option("--patch-size", ea.backbone.patch_size, "patch size (random backbones)");
  extract->add_option("--seed", ea.backbone.seed, "seed of a random backbone");
  extract->add_option("--limit", ea.limit, "only the first N images");
  extract->add_option("--device", ea.device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));

  BenchArgs ba;
  auto* bench = app.add_subcommand("bench", "benchmarks (JSON lines)");
  bench->require_subcommand(1);
  auto* bench_vit = bench->add_subcommand("vit", "ViT forward throughput on random weights");
  bench_vit->add_option("--arch", ba.arch, "architecture")->check(CLI::IsMember(vit::vit_config_names()));
  bench_vit->add_option("--batch", ba.batch, "batch size")->check(CLI::PositiveNumber);
  bench_vit->add_option("--image-size", ba.image_size, "input size (default: the architecture's)");
  bench_vit->add_option("--reps", ba.reps, "timed repetitions");
  bench_vit->add_option("--device", ba.device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  try {
    if (*convert) return run_convert(ca);
    if (*extract) return run_extract(ea);
    if (*bench_vit) return run_bench_vit(ba);
  } catch (const CLI::ValidationError& e) {
    std::fprintf(stderr, "sanf: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sanf: %s\n", e.what());
    return 1;
  }
  return 2;
}
