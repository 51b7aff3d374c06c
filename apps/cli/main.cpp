// apps/cli/main.cpp: the `sanf` command line.
//
//   sanf convert --from timm|hf|torchvision IN.safetensors OUT.safetensors [--arch A] [--heads H]
//                [--mean M,M,M] [--std S,S,S] [--ln-eps E]
//   sanf extract --backbone CKPT|random:ARCH --dataset NAME --data-dir DIR --out FEATS.safetensors
//                [--split train|test] [--batch-size B] [--image-size S] [--patch-size P] [--limit N]
//                [--device cpu|cuda] [--precision f32|tf32|bf16]
//   sanf train --dataset NAME --data-dir DIR --normal-class C --backbone CKPT|random:ARCH --out RUN [options]
//   sanf eval --run RUN [--device cpu|cuda] [--fpr F] [--map none|attention|gradient] [--masks]
//   sanf predict --run RUN|--model MODEL [INPUT...] [--dataset NAME --data-dir DIR [--split S]] [--out DIR]
//                [--threshold auto|fpr|f1|VALUE] [--fpr F] [--json] [--map none|attention|gradient]
//                [--skip-corrupt] [--device cpu|cuda]
//   sanf export --run RUN --out MODEL.safetensors
//   sanf oneclass --dataset NAME --data-dir DIR [--classes all|LIST] --backbone ... --out DIR [options]
//   sanf demo [--out DIR] [--no-caff] [options]   the one-class protocol on Fashion-MNIST, offline
//   sanf bench fma                                  the machine's FMA peak, 1 thread and all
//   sanf bench gemm [--rows 1576] [--all-layouts]    f32 GEMM at the ViT-B shapes
//   sanf bench vit [--arch vit-base] [--batch 8[,32...]] [--image-size 224] [--reps 3] [--device cpu|cuda]
//                  [--precision f32|tf32|bf16]
//   sanf bench flow [--quick] [--device cpu|cuda]   flow training step and scoring, ViT-B shapes
//   sanf bench extract [--limit 1000] [--data-dir DIR] extraction speed and peak memory
//   sanf bench predict [--limit 1000] [--data-dir DIR] predict end to end, files to CSV
//   sanf bench dist [--limit 256] [--dim 768] [--reps 10]  (alone or under mpirun) sharded extraction,
//                  the data-parallel training step, its all-reduce
//   (JSON lines; see apps/bench.h and bench/cpu_report.sh)
//
// Exit codes: 0 success, 2 usage errors (with the usage), 1 runtime errors (one line on stderr),
// 130 interrupted (Ctrl-C; what was complete stays usable).
// This is the only place errors become exit codes. Under mpirun / srun (dist/dist.h) extract, train, eval,
// predict and oneclass run on every rank together; an error on any rank prints "sanf: rank R of N: ..."
// and ends the whole job with that code (MPI_Abort).
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "apps/bench.h"
#include "apps/extract.h"
#include "apps/features.h"
#include "apps/interrupt.h"
#include "apps/predict.h"
#include "apps/train.h"
#include "core/safetensors.h"
#include "dist/dist.h"
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

// --device: cpu, cuda (the current CUDA device, cuda:0 unless CUDA_VISIBLE_DEVICES says otherwise) or
// cuda:N (device N, selected for the whole process before any tensor is placed on it).
const CLI::Validator kDeviceName(
    [](const std::string& s) -> std::string {
      if (s == "cpu" || s == "cuda") return "";
      if (s.rfind("cuda:", 0) == 0 && s.size() > 5 && s.size() <= 8 &&
          s.find_first_not_of("0123456789", 5) == std::string::npos)
        return "";
      return "'" + s + "' is not a device (cpu, cuda, or cuda:N)";
    },
    "cpu|cuda|cuda:N");

// With several ranks, plain `cuda` is GPU `local rank` of the node (one GPU per rank); cuda:N is GPU N.
Device parse_device(const std::string& s) {
  if (s == "cpu") return Device::CPU;
  if (s.rfind("cuda:", 0) == 0) cuda_select_device(std::stoi(s.substr(5)));
  else if (dist::Communicator::world().size() > 1) cuda_select_device(dist::Communicator::world().local_rank());
  return Device::CUDA;
}

// The demo's size and schedule (see `sanf demo --help` and README.md), chosen so the whole protocol (10
// classes; 10,000 backbone passes for the shared test split and 1,000 per class for training) runs in
// well under 15 minutes on 2 CPU cores.
constexpr int64_t kDemoImageSize = 28;  // Fashion-MNIST's own size: 7x7 patches of 4x4, no resampling
constexpr int64_t kDemoTrainLimit = 1000;
constexpr int64_t kDemoEpochs = 10;
constexpr double kDemoLr = 2e-4;

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
  const auto& md = f.metadata();
  fmt::print("wrote {}: {} tensors, arch {}, image {}, patch {}, dim {}, depth {}, heads {}\n", a.out,
             f.entries().size(), md.at("arch"), md.at("image_size"), md.at("patch_size"), md.at("dim"),
             md.at("depth"), md.at("heads"));
  fmt::print("normalisation: mean {} std {} ({})\n", md.at("mean"), md.at("std"), md.at("norm_source"));
  return 0;
}

// --precision (apps/extract.h): f32 | tf32 | bf16. tf32 is a GPU tensor-core mode: with --device cpu it is
// a usage error rather than a silent f32.
apps::BackbonePrecision parse_precision_arg(const std::string& s, Device device) {
  const apps::BackbonePrecision p = apps::parse_precision(s);
  try {
    apps::check_precision(p, device);
  } catch (const Error& e) {
    throw CLI::ValidationError(e.what());  // a usage error (exit 2), with check_precision's message
  }
  return p;
}

struct ExtractArgs {
  apps::BackboneOptions backbone;
  std::string dataset, data_dir, out, split = "test", device = "cpu", precision = "f32";
  int64_t batch_size = 64, limit = 0;
  bool f16 = false, skip_corrupt = false;
};

int run_extract(ExtractArgs a) {
  a.backbone.device = parse_device(a.device);
  a.backbone.precision = parse_precision_arg(a.precision, a.backbone.device);
  auto ds = apps::open_dataset(a.dataset, a.data_dir, a.split == "train" ? apps::Split::Train : apps::Split::Test,
                               apps::DatasetOptions{a.skip_corrupt});
  auto model = apps::open_backbone(a.backbone);
  std::vector<int64_t> idx;
  const int64_t n = a.limit > 0 ? std::min(a.limit, ds->size()) : ds->size();
  for (int64_t i = 0; i < n; ++i) idx.push_back(i);
  dist::Communicator& comm = dist::Communicator::world();
  if (a.backbone.is_random() && comm.is_root())
    fmt::print(stderr, "note: {} is a randomly initialised backbone (seed {}), not pretrained weights\n",
               a.backbone.spec, a.backbone.seed);
  apps::ExtractOptions eo;
  eo.batch_size = a.batch_size;
  eo.f16 = a.f16;
  // Several ranks: each extracts its part of the images; rank 0 writes the file (the same file, bit for bit).
  apps::extract_to_file_parallel(*model, *ds, idx, a.out,
                                 {{"backbone", a.backbone.spec}, {"dataset", a.dataset}, {"split", a.split},
                                  {"precision", a.precision}},
                                 eo, comm, comm.is_root());
  if (!comm.is_root()) return 0;
  const vit::ViTConfig& cfg = model->config();
  fmt::print("wrote {}: {} images, cls ({}, {}), patches ({}, {}, {})\n", a.out, n, n, cfg.dim, n, cfg.num_patches(),
             cfg.dim);
  return 0;
}

// ---- train / eval / oneclass / demo ------------------------------------------------------------------------

struct RunArgs {
  apps::RunConfig cfg;
  std::string device = "cpu", out, classes = "all", parallel = "data";
  bool no_cache = false, resume = false;
};

// The options train, oneclass and demo share: data, backbone, flow, training, placement.
void add_run_options(CLI::App* c, RunArgs& a, bool data_required) {
  apps::RunConfig& r = a.cfg;
  auto* ds = c->add_option("--dataset", r.dataset, "dataset: " + [] {
    std::string s;
    for (auto& n : apps::dataset_names()) s += (s.empty() ? "" : ", ") + n;
    return s;
  }())->check(CLI::IsMember(apps::dataset_names()));
  auto* dd = c->add_option("--data-dir", r.data_dir, "dataset directory");
  if (data_required) {
    ds->required();
    dd->required();
  } else {
    ds->capture_default_str();
    dd->capture_default_str();
  }
  c->add_flag("--skip-corrupt", r.skip_corrupt, "image folders: leave out (and count) images that fail to decode");
  c->add_option("--train-limit", r.train_limit, "only the first N training images of the normal class (0: all)")
      ->capture_default_str();
  c->add_option("--test-limit", r.test_limit, "only the first N test images (0: all)")->capture_default_str();
  c->add_option("--backbone", r.backbone.spec, "checkpoint (from sanf convert) or random:ARCH")->capture_default_str();
  c->add_option("--image-size", r.backbone.image_size, "backbone input size (0: the backbone's)")->capture_default_str();
  c->add_option("--patch-size", r.backbone.patch_size, "patch size of a random backbone (0: the architecture's)")
      ->capture_default_str();
  c->add_option("--backbone-seed", r.backbone.seed, "seed of a random backbone")->capture_default_str();
  c->add_option("--flow-layers", r.flow.layers, "K, number of FLLs")->capture_default_str();
  c->add_option("--flow-hidden", r.flow.hidden, "H, CAFF hidden width (0: D)")->capture_default_str();
  c->add_option("--flow-heads", r.flow.heads, "class-attention heads")->capture_default_str();
  c->add_option("--clamp-alpha", r.flow.alpha, "soft clamp alpha")->capture_default_str();
  c->add_option("--pool-grid", r.flow.pool_grid, "average-pool the token grid to G x G first (0: no pooling)")
      ->capture_default_str();
  c->add_flag("--no-caff", r.flow.no_caff, "ablation: attention over the flow's own half only, no patch tokens");
  c->add_option("--val-fraction", r.val_fraction,
                "hold out the last F of the normal training images to calibrate a threshold on (0: none, the "
                "paper's protocol)")->capture_default_str()->check(CLI::Range(0.0, 0.99));
  c->add_option("--fpr", r.fpr, "target false-alarm rate of the held-out threshold")->capture_default_str()
      ->check(CLI::Range(1e-9, 0.999));
  c->add_flag("--eval-every-epoch", r.eval_every_epoch,
              "score the test split after every epoch (test AUROC in train_log.jsonl; eval then also reports the "
              "best over epochs, the authors' optimistic protocol)");
  c->add_option("--epochs", r.epochs, "training epochs")->capture_default_str();
  c->add_option("--batch-size", r.batch_size, "training batch size")->capture_default_str()->check(CLI::PositiveNumber);
  c->add_option("--lr", r.lr, "Adam learning rate")->capture_default_str();
  c->add_option("--beta1", r.beta1, "Adam beta1")->capture_default_str();
  c->add_option("--beta2", r.beta2, "Adam beta2")->capture_default_str();
  c->add_option("--adam-eps", r.eps, "Adam epsilon")->capture_default_str();
  c->add_option("--weight-decay", r.weight_decay, "Adam weight decay (added to the gradient)")->capture_default_str();
  c->add_option("--seed", r.seed, "seed of the flow's weights, permutations and batch order")->capture_default_str();
  c->add_option("--device", a.device, "cpu, cuda or cuda:N")->check(kDeviceName)->capture_default_str();
  c->add_option("--cache-dir", r.cache_dir, "feature cache directory (default: $SANF_CACHE_DIR or ~/.cache/sanf/features)");
  c->add_flag("--no-cache", a.no_cache, "do not cache the backbone's features on disk");
  c->add_flag("--cache-f16", r.cache_f16, "store cached features as f16 (half the disk)");
  c->add_option("--extract-batch", r.extract_batch, "images per backbone batch")->capture_default_str()
      ->check(CLI::PositiveNumber);
}

apps::RunConfig finish(RunArgs& a) {
  apps::RunConfig r = a.cfg;
  r.device = parse_device(a.device);
  if (a.no_cache) r.cache_dir.clear();
  else if (r.cache_dir.empty()) r.cache_dir = apps::default_cache_dir();
  return r;
}

int run_train(RunArgs& a) {
  dist::Communicator& comm = dist::Communicator::world();
  apps::TrainResult t = apps::train_run(finish(a), a.out, a.resume, comm);
  if (!comm.is_root()) return 0;
  fmt::print("trained {}: epochs {}..{}, final loss {:.5f}, {:.1f} s\n", a.out, t.first_epoch, t.epochs_done, t.loss,
             t.seconds);
  return 0;
}

struct EvalArgs {
  std::string run, device, cache_dir, map = "attention";
  int64_t thumbnails = 8;
  double fpr = 0;
  bool masks = false;
};

int run_eval(const EvalArgs& a) {
  apps::EvalOptions o;
  if (!a.device.empty()) o.device = parse_device(a.device);
  if (!a.cache_dir.empty()) o.cache_dir = a.cache_dir;
  o.thumbnails = a.thumbnails;
  if (a.fpr > 0) o.fpr = a.fpr;
  o.map = apps::parse_map_kind(a.map);
  o.masks = a.masks;
  dist::Communicator& comm = dist::Communicator::world();
  nlohmann::json m = apps::eval_run(a.run, o, comm);
  if (!comm.is_root()) return 0;
  fmt::print("{}: AUROC {:.4f} (NLL), {:.4f} (mean z^2), AUPR {:.4f}, F1max {:.4f}; {} test images ({} normal)\n",
             a.run, m["auroc"].get<double>(), m["auroc_z2"].get<double>(), m["aupr"].get<double>(),
             m["f1_max"].get<double>(), m["n_test"].get<int64_t>(), m["n_normal"].get<int64_t>());
  for (const char* kind : {"f1", "fpr"}) {
    if (!m["thresholds"].contains(kind)) continue;
    const nlohmann::json& t = m["thresholds"][kind];
    fmt::print("threshold {}: score >= {:.6g} gives precision {:.4f}, recall {:.4f}, false-positive rate {:.4f} on the "
               "test split{}\n", kind, t["value"].get<double>(), t["test"]["precision"].get<double>(),
               t["test"]["recall"].get<double>(), t["test"]["fpr"].get<double>(),
               std::string(kind) == "f1" ? std::string(" (chosen on its labels)")
                                         : fmt::format(" (target {})", t["target"].get<double>()));
  }
  if (m.contains("pixel_auroc"))
    for (auto& [kind, v] : m["pixel_auroc"].items())
      if (v.is_number_float()) fmt::print("pixel AUROC, {} map: {:.4f}\n", kind, v.get<double>());
  if (m.contains("auroc_max_over_epochs"))
    fmt::print("AUROC best over epochs: {:.4f} at epoch {} (the authors' protocol: optimistic)\n",
               m["auroc_max_over_epochs"].get<double>(), m["auroc_max_epoch"].get<int64_t>());
  fmt::print("wrote {}/metrics.json, scores.csv, roc.svg, hist_nll.svg, hist_z2.svg, report.html{}\n", a.run,
             std::filesystem::exists(std::filesystem::path(a.run) / "maps.png") ? ", maps.png" : "");
  return 0;
}

// ---- predict / export ---------------------------------------------------------------------------------------

struct PredictArgs {
  std::string run, model, device, dataset, data_dir, split = "test", out = "sanf-predict", threshold = "auto",
              map = "none";
  std::vector<std::string> inputs;
  double fpr = 0;
  int64_t limit = 0;
  bool json = false, skip_corrupt = false;
};

int run_predict(const PredictArgs& a) {
  std::unique_ptr<apps::Dataset> dataset, files;
  std::vector<apps::PredictSource> sources;
  if (!a.dataset.empty()) {
    if (a.data_dir.empty()) throw CLI::ValidationError("--dataset", "needs --data-dir");
    const apps::Split split = a.split == "train" ? apps::Split::Train : apps::Split::Test;
    dataset = apps::open_dataset(a.dataset, a.data_dir, split);
    if (a.limit > 0 && a.limit < dataset->size()) dataset = apps::first_images(std::move(dataset), a.limit);
    sources.push_back({dataset.get(), a.dataset + ":" + apps::split_name(split)});
  }
  if (!a.inputs.empty()) {
    files = apps::open_image_files(a.inputs);
    sources.push_back({files.get(), ""});
  }
  if (sources.empty()) throw CLI::ValidationError("predict", "no input: give image files or folders, or --dataset");
  if (!a.run.empty() == !a.model.empty()) throw CLI::ValidationError("predict", "give exactly one of --run and --model");
  Device device = Device::CPU;
  if (!a.device.empty()) device = parse_device(a.device);
  else if (!a.run.empty() && apps::read_run_config(a.run).device == Device::CUDA) device = Device::CUDA;
  apps::Detector d = a.run.empty() ? apps::open_model_file(a.model, device) : apps::open_run_detector(a.run, device);
  std::optional<double> fpr;
  if (a.fpr > 0) fpr = a.fpr;
  const apps::Threshold t = apps::choose_threshold(d.thresholds, a.threshold, fpr, d.source);
  if (dist::Communicator::world().is_root())
    fmt::print(stderr, "predict: threshold {:.9g} ({}: {})\n", t.value, t.kind, t.note);
  apps::PredictOptions o;
  o.skip_corrupt = a.skip_corrupt;
  o.json_out = a.json ? stdout : nullptr;
  o.map = apps::parse_map_kind(a.map);
  if (o.map != apps::MapKind::None) {
    o.map_dir = (std::filesystem::path(a.out) / "maps").string();
    std::filesystem::create_directories(o.map_dir);
  }
  dist::Communicator& comm = dist::Communicator::world();
  const std::vector<apps::Prediction> rows = apps::predict(d, sources, t, o, comm);
  if (!comm.is_root()) return 0;
  std::filesystem::create_directories(a.out);
  const std::string csv = (std::filesystem::path(a.out) / "predictions.csv").string();
  apps::write_predictions_csv(csv, rows, t);
  int64_t anomalous = 0, errors = 0;
  for (const apps::Prediction& p : rows) p.scored ? anomalous += p.anomalous : ++errors;
  fmt::print(a.json ? stderr : stdout, "predict: {} images: {} anomalous, {} normal{}; wrote {}\n", rows.size(),
             anomalous, int64_t(rows.size()) - anomalous - errors,
             errors ? fmt::format(", {} not scored (corrupt)", errors) : std::string(), csv);
  return 0;
}

int run_export(const std::string& run, const std::string& out) {
  const apps::ExportSummary s = apps::export_model(run, out);
  fmt::print("wrote {}: {} tensors, {:.1f} MB; thresholds: {}\n", out, s.tensors, double(s.bytes) / 1e6,
             s.thresholds.empty() ? "none (run sanf eval, or train with --val-fraction)" : s.thresholds);
  return 0;
}

int run_oneclass(RunArgs& a) {
  apps::OneClassOptions o;
  o.classes = a.classes;
  o.parallel = a.parallel;
  apps::oneclass_run(finish(a), a.out, o, dist::Communicator::world());
  return 0;
}

// A failure on one rank of several: say which, and end the whole job (the others may wait in a collective).
int fail(int code, const char* prefix, const char* what) {
  dist::Communicator& w = dist::Communicator::world();
  if (w.size() == 1) {
    fmt::print(stderr, "{}sanf: {}\n", prefix, what);
    return code;
  }
  fmt::print(stderr, "{}sanf: rank {} of {}: {}\n", prefix, w.rank(), w.size(), what);
  dist::abort(code);
}

int run_main(int argc, char** argv);

}  // namespace

int main(int argc, char** argv) {
  try {
    dist::init(&argc, &argv);
    // With several ranks each drives GPU `local rank` of its node (when the node has that many), also where
    // the device comes from a run's config (eval, predict); --device cuda:N still names one.
    dist::Communicator& w = dist::Communicator::world();
    if (w.size() > 1 && cuda_device_count() > w.local_rank()) cuda_select_device(w.local_rank());
  } catch (const std::exception& e) {
    return fail(1, "", e.what());
  }
  const int rc = run_main(argc, argv);
  dist::finalize();
  return rc;
}

namespace {

int run_main(int argc, char** argv) {
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
  extract->add_option("--device", ea.device, "cpu, cuda or cuda:N")->check(kDeviceName);
  extract->add_option("--precision", ea.precision,
                      "backbone matrix multiplies: f32, tf32 (cuda only) or bf16 (bf16 operands, f32 sums)")
      ->check(CLI::IsMember({"f32", "tf32", "bf16"}))
      ->capture_default_str();
  extract->add_flag("--f16", ea.f16, "store the tokens as f16");
  extract->add_flag("--skip-corrupt", ea.skip_corrupt, "image folders: leave out images that fail to decode");

  RunArgs ta;
  auto* train = app.add_subcommand("train", "train the flow on one normal class");
  add_run_options(train, ta, true);
  train->add_option("--normal-class", ta.cfg.normal_class, "the normal class: name or index")->required();
  train->add_option("--out", ta.out, "run directory")->required();
  train->add_flag("--resume", ta.resume, "continue the run in --out from its last complete epoch");

  EvalArgs va;
  auto* eval = app.add_subcommand("eval", "score the test split with a trained run; metrics, plots, report");
  eval->add_option("--run", va.run, "run directory (from sanf train)")->required();
  eval->add_option("--device", va.device, "cpu, cuda or cuda:N (default: the run's)")->check(kDeviceName);
  eval->add_option("--cache-dir", va.cache_dir, "feature cache directory (default: the run's)");
  eval->add_option("--thumbnails", va.thumbnails, "most anomalous / most normal images in report.html")
      ->capture_default_str();
  eval->add_option("--fpr", va.fpr, "target false-alarm rate of the held-out threshold (default: the run's)")
      ->check(CLI::Range(1e-9, 0.999));
  eval->add_option("--map", va.map, "anomaly maps of the most anomalous images in report.html: none, attention, gradient")
      ->check(CLI::IsMember({"none", "attention", "gradient"}))->capture_default_str();
  eval->add_flag("--masks", va.masks,
                 "pixel AUROC of the attention and gradient maps against the ground-truth masks (mvtec)");

  PredictArgs pa;
  auto* predict = app.add_subcommand("predict", "score new images with a trained run or an exported model");
  predict->add_option("inputs", pa.inputs, "image files (PNG, JPEG) and folders (searched recursively)");
  predict->add_option("--run", pa.run, "run directory (from sanf train)");
  predict->add_option("--model", pa.model, "model file (from sanf export)");
  predict->add_option("--dataset", pa.dataset, "also (or only) a dataset split")->check(CLI::IsMember(apps::dataset_names()));
  predict->add_option("--data-dir", pa.data_dir, "the dataset's directory");
  predict->add_option("--split", pa.split, "the dataset's split")->check(CLI::IsMember({"train", "test"}))
      ->capture_default_str();
  predict->add_option("--limit", pa.limit, "only the dataset's first N images (0: all)")->check(CLI::NonNegativeNumber);
  predict->add_option("--out", pa.out, "output directory (predictions.csv)")->capture_default_str();
  predict->add_option("--threshold", pa.threshold,
                      "auto (fpr if the run has held-out scores, else f1), fpr, f1, or a number")
      ->capture_default_str()
      ->check(CLI::Validator(
          [](const std::string& s) -> std::string {
            if (s == "auto" || s == "fpr" || s == "f1" || apps::threshold_number(s)) return "";
            return "'" + s + "' is not auto, fpr, f1 or a number";
          },
          "auto|fpr|f1|VALUE"));
  predict->add_option("--fpr", pa.fpr, "target false-alarm rate for --threshold fpr (default: the run's)")
      ->check(CLI::Range(1e-9, 0.999));
  predict->add_flag("--json", pa.json, "one JSON line per image on stdout");
  predict->add_option("--map", pa.map, "anomaly maps over the images (OUT/maps/*.png): none, attention or gradient")
      ->check(CLI::IsMember({"none", "attention", "gradient"}))->capture_default_str();
  predict->add_flag("--skip-corrupt", pa.skip_corrupt, "a corrupt image gets a row saying why, instead of an error");
  predict->add_option("--device", pa.device, "cpu, cuda or cuda:N (default: the run's; cpu for a model)")
      ->check(kDeviceName);

  std::string export_run, export_out;
  auto* export_cmd = app.add_subcommand("export", "write a run as one model file for sanf predict --model");
  export_cmd->add_option("--run", export_run, "run directory")->required();
  export_cmd->add_option("--out", export_out, "model file (.safetensors)")->required();

  RunArgs oa;
  auto* oneclass = app.add_subcommand("oneclass", "the one-class protocol: one run per normal class, a table");
  add_run_options(oneclass, oa, true);
  oneclass->add_option("--classes", oa.classes, "all, or a comma-separated list of class names / indices")
      ->capture_default_str();
  oneclass->add_option("--out", oa.out, "directory for the runs and results.csv / results.json")->required();
  oneclass->add_option("--parallel", oa.parallel,
                       "with several ranks (mpirun): data (every class by all ranks together) or classes (each "
                       "rank trains whole classes alone)")
      ->check(CLI::IsMember({"data", "classes"}))->capture_default_str();

  // The demo: everything offline on 2 CPU cores. No pretrained weights can be downloaded here, so the
  // backbone is a seeded RANDOM vit-tiny at 28x28 with 4x4 patches (49 tokens); it says so when it runs.
  RunArgs da;
  da.cfg.backbone = {"random:vit-tiny", kDemoImageSize, 4, 0, Device::CPU};
  da.cfg.train_limit = kDemoTrainLimit;
  da.cfg.epochs = kDemoEpochs;
  da.cfg.lr = kDemoLr;
  da.cfg.cache_f16 = true;
  da.out = "sanf-demo";
  auto* demo = app.add_subcommand("demo", "the one-class protocol on Fashion-MNIST with a random backbone, offline");
  add_run_options(demo, da, false);
  demo->add_option("--classes", da.classes, "all, or a comma-separated list of class names / indices")
      ->capture_default_str();
  demo->add_option("--out", da.out, "output directory")->capture_default_str();

  // Benchmarks: the device option is a string (parsed after CLI11 has filled it).
  std::string bench_device = "cpu";
  auto add_device = [&](CLI::App* c) {
    c->add_option("--device", bench_device, "cpu, cuda or cuda:N")->check(kDeviceName);
  };
  auto* bench = app.add_subcommand("bench", "benchmarks (JSON lines; see bench/cpu_report.sh)");
  bench->require_subcommand(1);
  auto* bench_fma = bench->add_subcommand("fma", "the machine's FMA peak (GFLOP/s), 1 thread and all threads");
  apps::GemmBenchOptions bg;
  auto* bench_gemm = bench->add_subcommand("gemm", "f32 GEMM GFLOP/s at the ViT-B linear layers' shapes");
  bench_gemm->add_option("--rows", bg.rows, "M, the token rows (default 8 * 197)")->check(CLI::PositiveNumber);
  bench_gemm->add_flag("--all-layouts", bg.all_layouts, "also a @ b and at.T @ b");
  bench_gemm->add_flag("--quick", bg.quick, "fewer repetitions");
  bench_gemm->add_option("--tile", bg.tile, "CPU f32 register tile: auto (12x32 with AVX-512, else 6x16), 6x16, 12x32")
      ->check(CLI::IsMember({"auto", "6x16", "12x32"}));
  add_device(bench_gemm);
  apps::VitBenchOptions bv;
  auto* bench_vit = bench->add_subcommand("vit", "ViT forward throughput on random weights");
  bench_vit->add_option("--arch", bv.arch, "architecture")->check(CLI::IsMember(vit::vit_config_names()));
  bench_vit->add_option("--batch", bv.batches, "batch sizes, comma-separated (one model, a line for each)")
      ->delimiter(',')
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  bench_vit->add_option("--image-size", bv.image_size, "input size (default: the architecture's)");
  bench_vit->add_option("--reps", bv.reps, "timed repetitions")->check(CLI::PositiveNumber);
  bench_vit->add_option("--precision", bv.precision, "matrix multiplies: f32, tf32 (cuda only) or bf16")
      ->check(CLI::IsMember({"f32", "tf32", "bf16"}))
      ->capture_default_str();
  bench_vit->add_option("--fused-attention", bv.fused_attention,
                        "bf16 on cuda: the fused attention kernel as set at start-up (default), off, on, or both "
                        "(each batch with it off, then on)")
      ->check(CLI::IsMember({"default", "off", "on", "both"}))
      ->capture_default_str();
  bench_vit->add_option("--cublaslt", bv.cublaslt,
                        "on cuda: cuBLASLt's bias epilogue (bf16: and residual input) as set at start-up (default), "
                        "off, on, or both")
      ->check(CLI::IsMember({"default", "off", "on", "both"}))
      ->capture_default_str();
  add_device(bench_vit);
  bool bench_quick = false;
  auto* bench_flow = bench->add_subcommand("flow", "flow training step and scoring pass at the paper's ViT-B shapes");
  bench_flow->add_flag("--quick", bench_quick, "fewer repetitions");
  int64_t bench_flow_dim = 768;
  bench_flow->add_option("--dim", bench_flow_dim, "D and H: 768 (ViT-B) or 1024 (ViT-L)")->capture_default_str();
  int64_t bench_flow_tokens = 196;
  bench_flow->add_option("--tokens", bench_flow_tokens, "N: 196 (224 / 16 squared); the demo's is 49")
      ->capture_default_str();
  add_device(bench_flow);
  apps::ExtractBenchOptions be;
  auto* bench_extract = bench->add_subcommand("extract", "extraction img/s and peak memory (random backbone)");
  bench_extract->add_option("--limit", be.limit, "images")->check(CLI::PositiveNumber)->capture_default_str();
  bench_extract->add_option("--dataset", be.dataset, "dataset name")->check(CLI::IsMember(apps::dataset_names()))
      ->capture_default_str();
  bench_extract->add_option("--data-dir", be.data_dir, "dataset directory")->capture_default_str();
  bench_extract->add_option("--arch", be.arch, "architecture")->check(CLI::IsMember(vit::vit_config_names()))
      ->capture_default_str();
  bench_extract->add_option("--image-size", be.image_size, "input size")->capture_default_str();
  bench_extract->add_option("--patch-size", be.patch_size, "patch size")->capture_default_str();
  bench_extract->add_option("--batch-size", be.batch_size, "images per batch")->check(CLI::PositiveNumber)
      ->capture_default_str();
  add_device(bench_extract);
  apps::ExtractBenchOptions bp;
  auto* bench_predict = bench->add_subcommand("predict", "sanf predict end to end: PNG files to predictions.csv");
  bench_predict->add_option("--limit", bp.limit, "images")->check(CLI::PositiveNumber)->capture_default_str();
  bench_predict->add_option("--data-dir", bp.data_dir, "Fashion-MNIST directory (the images)")->capture_default_str();
  bench_predict->add_option("--arch", bp.arch, "architecture")->check(CLI::IsMember(vit::vit_config_names()))
      ->capture_default_str();
  bench_predict->add_option("--batch-size", bp.batch_size, "images per backbone batch")->check(CLI::PositiveNumber)
      ->capture_default_str();
  add_device(bench_predict);
  apps::DistBenchOptions bd;
  auto* bench_dist = bench->add_subcommand(
      "dist", "alone or under mpirun: extraction, the data-parallel training step and its all-reduce, per rank count");
  bench_dist->add_option("--limit", bd.extract.limit, "images to extract")->check(CLI::PositiveNumber)->capture_default_str();
  bench_dist->add_option("--data-dir", bd.extract.data_dir, "Fashion-MNIST directory")->capture_default_str();
  bench_dist->add_option("--arch", bd.extract.arch, "backbone architecture")->check(CLI::IsMember(vit::vit_config_names()))
      ->capture_default_str();
  bench_dist->add_option("--dim", bd.dim, "the flow's D and H (768: ViT-B)")->capture_default_str();
  bench_dist->add_option("--tokens", bd.tokens, "patch tokens N")->capture_default_str();
  bench_dist->add_option("--batch", bd.batch, "global batch")->capture_default_str();
  bench_dist->add_option("--reps", bd.reps, "timed repetitions")->check(CLI::PositiveNumber)->capture_default_str();
  add_device(bench_dist);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  try {
    if (*convert) return run_convert(ca);
    if (*bench) {
      const Device dev = parse_device(bench_device);
      if (*bench_fma) apps::bench_fma();
      if (*bench_gemm) bg.device = dev, apps::bench_gemm(bg);
      if (*bench_vit) bv.device = dev, parse_precision_arg(bv.precision, dev), apps::bench_vit(bv);
      if (*bench_flow) apps::bench_flow(dev, bench_quick, bench_flow_dim, bench_flow_tokens);
      if (*bench_extract) be.device = dev, apps::bench_extract(be);
      if (*bench_predict) bp.device = dev, apps::bench_predict(bp);
      if (*bench_dist) bd.extract.device = dev, apps::bench_dist(bd);
      return 0;
    }
    // The long commands check for Ctrl-C between batches and steps: exit 130, every output whole.
    apps::install_interrupt_handler();
    if (*extract) return run_extract(ea);
    if (*train) return run_train(ta);
    if (*eval) return run_eval(va);
    if (*predict) return run_predict(pa);
    if (*export_cmd) return run_export(export_run, export_out);
    if (*oneclass) return run_oneclass(oa);
    if (*demo) {
      fmt::print("sanf demo: the one-class protocol on Fashion-MNIST ({}), every class in turn normal.\n"
                 "The backbone is a seeded RANDOMLY INITIALISED ViT ({}, {}x{}, patch {}), not pretrained\n"
                 "weights: none can be downloaded here. Expect AUROCs far below the paper's; see the README for\n"
                 "real weights.\n",
                 da.cfg.data_dir, da.cfg.backbone.spec, da.cfg.backbone.image_size, da.cfg.backbone.image_size,
                 da.cfg.backbone.patch_size);
      std::fflush(stdout);
      return run_oneclass(da);
    }
  } catch (const CLI::ValidationError& e) {
    return fail(2, "", e.what());
  } catch (const apps::Interrupted& e) {
    return fail(130, "\n", e.what());
  } catch (const std::exception& e) {
    return fail(1, "", e.what());
  }
  return 2;
}

}  // namespace
