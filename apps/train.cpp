// apps/train.cpp: run directories, the training loop, evaluation and the one-class protocol.
#include "apps/train.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <numeric>
#include <optional>
#include <sstream>
#include <tuple>

#include "apps/image_io.h"
#include "apps/interrupt.h"
#include "apps/maps.h"
#include "apps/metrics.h"
#include "apps/report.h"
#include "apps/run_dir.h"
#include "apps/scoring.h"
#include "core/atomic_file.h"
#include "core/safetensors.h"
#include "flows/flow.h"
#include "kernels/copy.h"
#include "kernels/reduce.h"
#include "nn/adam.h"

namespace sanf::apps {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr int kConfigVersion = 1;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

Device device_from_name(const std::string& s, const std::string& source) {
  if (s == "cpu") return Device::CPU;
  if (s == "cuda") return Device::CUDA;
  SANF_FAIL(source, ": device must be cpu or cuda, got '", s, "'");
}

// The sum of squares of every parameter's gradient (inf or nan when any element is), each element widened to
// f64: one kernels::sum_squares call per gradient dtype (normally one in all), so on a GPU one pass and one
// wait for the device per step, not a few kernels per parameter.
double grad_norm_sq(flows::Flow& flow) {
  NoGradGuard no_grad;
  std::vector<Tensor> f32, f64;
  for (auto& [name, p] : flow.named_parameters()) {
    const Tensor g = p->grad();
    if (!g.defined()) continue;
    SANF_CHECK(g.dtype() == DType::F32 || g.dtype() == DType::F64, "the gradient of '", name, "' is ", g.info());
    (g.dtype() == DType::F32 ? f32 : f64).push_back(contiguous(g));
  }
  return kernels::sum_squares(f32) + kernels::sum_squares(f64);
}

// The gradients of every rank summed, in one all-reduce of one flat f32 buffer on the gradients' device:
// each parameter's gradient times `weight` (zeros where this rank has none), then one flag per parameter
// (`weight` where this rank has its gradient), then loss * weight. After the sum each parameter whose flag is
// non-zero on some rank gets its slice of the buffer as its gradient (so the parameters Adam updates are the
// same on every rank); returns the summed loss.
double all_reduce_gradients(flows::Flow& flow, const Tensor& loss, double weight, dist::Communicator& comm,
                            Device device) {
  NoGradGuard no_grad;
  const auto params = flow.named_parameters();
  std::vector<Tensor> parts;
  std::vector<double> flags;
  for (auto& [name, p] : params) {
    const Tensor g = p->grad();
    parts.push_back(g.defined() ? reshape(contiguous(g), {p->numel()}) : zeros({p->numel()}, DType::F32, device));
    flags.push_back(g.defined() ? 1.0 : 0.0);
  }
  flags.push_back(0.0);  // the loss's slot
  Tensor tail = Tensor::from_vector(flags, {int64_t(flags.size())}, DType::F32, device);
  if (loss.defined()) tail = concat({narrow(tail, 0, 0, int64_t(params.size())), reshape(to(loss, DType::F32), {1})}, 0);
  parts.push_back(tail);
  Tensor flat = contiguous(mul(concat(parts, 0), weight));
  comm.all_reduce_sum(flat);
  const std::vector<double> sums = narrow(flat, 0, flat.numel() - int64_t(flags.size()), int64_t(flags.size())).to_vector();
  int64_t offset = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    Tensor& p = *params[i].second;
    if (sums[i] != 0) p.set_grad(reshape(narrow(flat, 0, offset, p.numel()), p.shape()));
    else p.zero_grad();
    offset += p.numel();
  }
  return sums.back();
}

}  // namespace

// ---- the training step -------------------------------------------------------------------------------------

StepResult train_step(flows::Flow& flow, nn::Adam& adam, const StepBatch& batch, dist::Communicator& comm,
                      Device device, const std::function<void()>& while_queued,
                      const std::function<std::string(const std::string&)>& stopped) {
  SANF_CHECK(batch.global_rows > 0 && batch.rows() <= batch.global_rows, "train_step: ", batch.rows(),
             " rows of a global batch of ", batch.global_rows);
  // Forward and backward of this rank's rows: loss = their mean NLL / D.
  Tensor loss;
  if (batch.rows() > 0) {
    loss = flows::nll_loss(flow.forward(to(batch.y, device), to(batch.P, device)));
    backward(loss);
  }
  // On a GPU the forward and backward are queued by now: the caller gathers the next batch meanwhile. (A
  // non-finite loss is caught below, before Adam touches the weights; the backward of a NaN loss only fills
  // gradients that are never used.)
  if (while_queued) while_queued();
  double l;
  if (comm.size() == 1) {
    l = loss.item();
  } else {
    // Rank r's mean over its b_r rows, weighted b_r / B: the sum over the ranks is the mean over the global
    // batch, the loss and gradient one process would compute for it.
    l = all_reduce_gradients(flow, loss, double(batch.rows()) / double(batch.global_rows), comm, device);
  }
  SANF_CHECK(std::isfinite(l), stopped(cat("the loss is ", l)));
  const double g2 = grad_norm_sq(flow);
  SANF_CHECK(std::isfinite(g2), stopped(cat("a gradient is not finite (loss ", l, ")")));
  adam.step();
  adam.zero_grad();
  return StepResult{l, g2};
}

namespace {

// Every rank's parameters become rank 0's: one broadcast of one flat buffer.
void broadcast_parameters(flows::Flow& flow, dist::Communicator& comm, Device device) {
  NoGradGuard no_grad;
  const auto params = flow.named_parameters();
  std::vector<Tensor> parts;
  for (auto& [name, p] : params) parts.push_back(reshape(to(*p, device), {p->numel()}));
  Tensor flat = contiguous(concat(parts, 0));
  comm.broadcast(flat, 0);
  int64_t offset = 0;
  for (auto& [name, p] : params) {
    kernels::copy(*p, reshape(narrow(flat, 0, offset, p->numel()), p->shape()));
    offset += p->numel();
  }
}

// 0, 1, ..., n - 1.
std::vector<int64_t> all_rows(int64_t n) {
  std::vector<int64_t> rows(static_cast<size_t>(n));
  std::iota(rows.begin(), rows.end(), int64_t(0));
  return rows;
}

// 1 for each feature row whose label is not the run's normal class; both kinds must be present.
std::vector<int> anomalous_labels(const FeatureSet& test, const RunConfig& cfg) {
  const auto n = int64_t(test.size());
  std::vector<int> a(static_cast<size_t>(n));
  int64_t n_anom = 0;
  for (int64_t i = 0; i < n; ++i) n_anom += a[size_t(i)] = test.labels()[size_t(i)] != cfg.normal_label;
  SANF_CHECK(n_anom > 0 && n_anom < n, "the test split (", n, " images) needs both normal (class ", cfg.normal_name,
             ") and anomalous images; it has ", n - n_anom, " normal");
  return a;
}

}  // namespace

// ---- RunConfig ---------------------------------------------------------------------------------------------

void RunConfig::resolve() {
  SANF_CHECK(epochs >= 0, "--epochs must be >= 0, got ", epochs);
  SANF_CHECK(batch_size > 0, "--batch-size must be positive, got ", batch_size);
  SANF_CHECK(lr > 0 && std::isfinite(lr), "--lr must be a positive number, got ", lr);
  SANF_CHECK(train_limit >= 0 && test_limit >= 0, "--train-limit and --test-limit must be >= 0");
  SANF_CHECK(val_fraction >= 0 && val_fraction < 1, "--val-fraction must be in [0, 1), got ", val_fraction);
  SANF_CHECK(fpr > 0 && fpr < 1, "--fpr must be in (0, 1), got ", fpr);
  SANF_CHECK(!normal_class.empty(), "no normal class given (--normal-class)");
  auto ds = open_dataset(dataset, data_dir, Split::Train, DatasetOptions{skip_corrupt});
  normal_label = resolve_class(normal_class, ds->class_names(), cat(dataset, " (", data_dir, ")"));
  normal_name = ds->class_names()[size_t(normal_label)];
  const vit::ViTConfig vc = backbone_config(backbone);
  flow.dim = vc.dim;
  flow.tokens = vc.num_patches();
  flow.seed = seed;
  flow.validate("flow options");
}

json RunConfig::to_json() const {
  json j{{"version", kConfigVersion},
         {"dataset", dataset},
         {"data_dir", data_dir},
         {"normal_class", normal_class},
         {"normal_label", normal_label},
         {"normal_name", normal_name},
         {"skip_corrupt", skip_corrupt},
         {"train_limit", train_limit},
         {"test_limit", test_limit},
         {"backbone", {{"spec", backbone.spec},
                       {"image_size", backbone.image_size},
                       {"patch_size", backbone.patch_size},
                       {"seed", backbone.seed}}},
         {"flow", flow.to_metadata()},
         {"epochs", epochs},
         {"batch_size", batch_size},
         {"lr", lr},
         {"adam", {{"beta1", beta1}, {"beta2", beta2}, {"eps", eps}, {"weight_decay", weight_decay}}},
         {"seed", seed},
         {"device", device_name(device)},
         {"cache_dir", cache_dir},
         {"cache_f16", cache_f16},
         {"extract_batch", extract_batch},
         {"fpr", fpr},
         {"eval_every_epoch", eval_every_epoch}};
  // Held out only when asked: the configs of runs that hold nothing out stay as they were.
  if (val_fraction > 0) j["val_fraction"] = val_fraction;
  // The backbone's GEMM precision (apps/extract.h) only when not f32: f32 runs' configs stay as they were.
  if (backbone.precision != BackbonePrecision::F32) j["backbone"]["precision"] = precision_name(backbone.precision);
  return j;
}

RunConfig RunConfig::from_json(const json& j, const std::string& source) {
  RunConfig c;
  try {
    SANF_CHECK(j.at("version").get<int>() == kConfigVersion, source, ": config version ", j.at("version"),
               " is not ", kConfigVersion);
    c.dataset = j.at("dataset");
    c.data_dir = j.at("data_dir");
    c.normal_class = j.at("normal_class");
    c.normal_label = j.at("normal_label");
    c.normal_name = j.at("normal_name");
    c.skip_corrupt = j.at("skip_corrupt");
    c.train_limit = j.at("train_limit");
    c.test_limit = j.at("test_limit");
    const json& b = j.at("backbone");
    c.backbone.spec = b.at("spec");
    c.backbone.image_size = b.at("image_size");
    c.backbone.patch_size = b.at("patch_size");
    c.backbone.seed = b.at("seed");
    if (b.contains("precision")) c.backbone.precision = parse_precision(b.at("precision").get<std::string>());
    c.flow = flows::FlowConfig::from_metadata(j.at("flow").get<std::map<std::string, std::string>>(), source);
    c.epochs = j.at("epochs");
    c.batch_size = j.at("batch_size");
    c.lr = j.at("lr");
    const json& a = j.at("adam");
    c.beta1 = a.at("beta1");
    c.beta2 = a.at("beta2");
    c.eps = a.at("eps");
    c.weight_decay = a.at("weight_decay");
    c.seed = j.at("seed");
    c.device = device_from_name(j.at("device"), source);
    c.cache_dir = j.at("cache_dir");
    c.cache_f16 = j.at("cache_f16");
    c.extract_batch = j.at("extract_batch");
    c.val_fraction = j.value("val_fraction", 0.0);
    c.fpr = j.value("fpr", c.fpr);
    c.eval_every_epoch = j.value("eval_every_epoch", false);
  } catch (const json::exception& e) {
    SANF_FAIL(source, ": not a sanf run config: ", e.what());
  }
  return c;
}

json RunConfig::identity() const {
  json j = to_json();
  for (const char* k : {"epochs", "lr", "device", "cache_dir", "extract_batch", "normal_class", "fpr", "eval_every_epoch"})
    j.erase(k);
  return j;
}

FeatureRequest RunConfig::features(Split split) const {
  FeatureRequest r;
  r.backbone = backbone;
  r.backbone.device = device;
  r.dataset = dataset;
  r.data_dir = data_dir;
  r.dataset_options.skip_corrupt = skip_corrupt;
  r.split = split;
  r.label = split == Split::Train ? normal_label : -1;
  r.limit = split == Split::Train ? train_limit : test_limit;
  r.extract.batch_size = extract_batch;
  r.extract.f16 = cache_f16;
  r.cache_dir = cache_dir;
  return r;
}

RunConfig read_run_config(const std::string& run_dir) {
  const std::string path = run_file(run_dir, "config.json");
  SANF_CHECK(fs::exists(path), run_dir, ": not a run directory (no config.json)");
  return RunConfig::from_json(read_json_file(path), path);
}

// ---- training ----------------------------------------------------------------------------------------------

TrainResult train_run(RunConfig cfg, const std::string& run_dir, bool resume, dist::Communicator& comm) {
  const auto t0 = std::chrono::steady_clock::now();
  const bool root = comm.is_root();  // rank 0 alone writes the run directory and prints
  cfg.resolve();
  const std::string config_path = run_file(run_dir, "config.json"), ckpt = run_file(run_dir, "flow.safetensors"),
                    log_path = run_file(run_dir, "train_log.jsonl");
  const bool exists = fs::exists(config_path);
  if (exists) {
    SANF_CHECK(resume, run_dir, " already holds a run (config.json); pass --resume to continue it, or choose "
               "another --out");
    const RunConfig old = read_run_config(run_dir);
    const json a = old.identity(), b = cfg.identity();
    std::string diff;
    for (auto it = b.begin(); it != b.end(); ++it)
      if (!a.contains(it.key()) || a.at(it.key()) != it.value())
        diff += cat("\n  ", it.key(), ": ", a.contains(it.key()) ? a.at(it.key()).dump() : "(missing)", " in the run, ",
                    it.value().dump(), " now");
    SANF_CHECK(diff.empty(), run_dir, " holds a run with another configuration; differences:", diff);
  } else {
    SANF_CHECK(!resume || !fs::exists(run_dir) || fs::is_empty(run_dir), run_dir,
               ": nothing to resume (no config.json) and the directory is not empty");
    SANF_CHECK(!fs::exists(run_dir) || fs::is_directory(run_dir), run_dir, ": exists and is not a directory");
    SANF_CHECK(!fs::exists(run_dir) || fs::is_empty(run_dir), run_dir,
               ": the directory is not empty and holds no run; choose another --out");
  }

  // Every rank has looked at the directory before rank 0 writes to it.
  comm.barrier();
  if (root && cfg.backbone.is_random())
    fmt::print(stderr, "note: the backbone is a RANDOMLY INITIALISED {} (seed {}), not pretrained weights; "
               "AUROC will be far below the paper's (see the README for real weights)\n",
               cfg.backbone.spec.substr(7), cfg.backbone.seed);
  const FeatureSet train = load_features(cfg.features(Split::Train), comm);
  SANF_CHECK(train.dim() == cfg.flow.dim && train.tokens() == cfg.flow.tokens, train.path(), ": features are ",
             train.tokens(), " x ", train.dim(), " but the backbone gives ", cfg.flow.tokens, " x ", cfg.flow.dim);

  if (root && !exists) {
    fs::create_directories(run_dir);
    write_json_file(config_path, cfg.to_json());
  } else if (root) {  // keep the stored run, with the new schedule and placement
    json j = read_json_file(config_path);
    const json now = cfg.to_json();
    for (const char* k : {"epochs", "lr", "device", "cache_dir", "extract_batch", "fpr", "eval_every_epoch"})
      j[k] = now[k];
    write_json_file(config_path, j);
  }

  flows::Flow flow(cfg.flow, DType::F32, cfg.device);
  nn::Adam adam(flow.named_parameters(), nn::AdamOptions{cfg.lr, cfg.beta1, cfg.beta2, cfg.eps, cfg.weight_decay});
  int64_t done = 0;
  if (fs::exists(ckpt)) {
    flow.load(ckpt, &adam);
    const std::map<std::string, std::string> meta = SafetensorsFile::open(ckpt).metadata();
    SANF_CHECK(meta.count("train.epoch"), ckpt, ": no train.epoch in its metadata");
    done = std::stoll(meta.at("train.epoch"));
    adam.options().lr = cfg.lr;
  }
  if (comm.size() > 1) {
    // Rank 0's checkpoint is the run: every rank must have read the same one, and starts from rank 0's
    // parameters (the same as its own when it read the same checkpoint or drew the same seeded initialisation).
    const std::string done0 = comm.broadcast(std::to_string(done), 0);
    SANF_CHECK(done0 == std::to_string(done), ckpt, " holds epoch ", done, " as this rank sees it but epoch ", done0,
               " as rank 0 sees it: the run directory must be on a file system that every rank sees");
    broadcast_parameters(flow, comm, cfg.device);
  }
  std::vector<json> log = read_log(log_path, done);
  TrainResult res;
  res.first_epoch = done + 1;
  res.epochs_done = done;
  if (!log.empty()) res.loss = log.back().value("loss", 0.0);
  // The held-out normal images (val_fraction) are the last n_val rows of the training features.
  const int64_t n_all = train.size();
  const int64_t n_val = cfg.val_fraction > 0 ? std::llround(cfg.val_fraction * double(n_all)) : 0;
  SANF_CHECK(cfg.val_fraction == 0 || (n_val >= 1 && n_val < n_all), "--val-fraction ", cfg.val_fraction, " of the ",
             n_all, " normal training images holds out ", n_val, "; at least one must be held out and one left to "
             "train on");
  const int64_t n = n_all - n_val, steps = (n + cfg.batch_size - 1) / cfg.batch_size;
  if (n_val > 0 && double(n_val) * cfg.fpr < 1.0 - 1e-9)
    fmt::print(stderr, "note: {} held-out images cannot resolve a false-alarm rate of {} (that needs at least "
               "{:.0f}); the threshold will lie above all their scores\n", n_val, cfg.fpr, std::ceil(1.0 / cfg.fpr - 1e-9));
  // The test split, scored after every epoch when asked (the authors' protocol, see eval's
  // auroc_max_over_epochs).
  std::optional<FeatureSet> test;
  std::vector<int> test_anomalous;
  if (cfg.eval_every_epoch && done < cfg.epochs) {
    test = load_features(cfg.features(Split::Test), comm);
    test_anomalous = anomalous_labels(*test, cfg);
  }

  if (root && done >= cfg.epochs)
    fmt::print(stderr, "train: {} already has {} of {} epochs\n", run_dir, done, cfg.epochs);
  else if (root)
    fmt::print(stderr, "train: class {} ({}), {} images{}, {} steps per epoch, epochs {}..{}{}\n", cfg.normal_label,
               cfg.normal_name, n, n_val > 0 ? fmt::format(" ({} more held out)", n_val) : "", steps, done + 1,
               cfg.epochs, comm.size() > 1 ? fmt::format(", {} ranks", comm.size()) : "");
  const std::string last_good =
      done > 0 ? cat(ckpt, " still holds epoch ", done) : std::string("no epoch had completed");
  for (int64_t epoch = done + 1; epoch <= cfg.epochs; ++epoch) {
    const auto te = std::chrono::steady_clock::now();
    Generator gen(cfg.seed * 1000003ull + uint64_t(epoch));
    const std::vector<int64_t> order = gen.permutation(n);
    double loss_sum = 0, gnorm = 0;
    // Step s's batch, gathered on the host: the global batch is the rows order[s * batch_size ...]; this rank
    // takes its contiguous part of it (all of it in a world of one).
    auto gather = [&](int64_t s) {
      const int64_t b0 = s * cfg.batch_size, b = std::min(cfg.batch_size, n - b0);
      const dist::Part mine = dist::part(b, 1, comm.rank(), comm.size());
      auto [y, P] =
          train.batch(std::vector<int64_t>(order.begin() + b0 + mine.lo, order.begin() + b0 + mine.hi), comm);
      return StepBatch{y, P, b};
    };
    StepBatch batch = gather(0);
    for (int64_t s = 0; s < steps; ++s) {
      // Where training stopped and what is still on disk, for the messages below (built only on failure).
      auto where = [&] { return cat("at epoch ", epoch, ", step ", s + 1, " of ", steps); };
      auto keep = [&] {
        return epoch > 1 ? cat(ckpt, " still holds epoch ", epoch - 1, " (resume with --resume)") : last_good;
      };
      if (interrupted()) throw Interrupted(cat("interrupted ", where(), "; ", keep()));
      StepBatch next;
      const StepResult r = train_step(
          flow, adam, batch, comm, cfg.device, [&] { if (s + 1 < steps) next = gather(s + 1); },
          [&](const std::string& what) {
            return cat("training stopped ", where(), " (global step ", (epoch - 1) * steps + s + 1, "): ", what, "; ",
                       keep(), ". Try a smaller --lr.");
          });
      loss_sum += r.loss * double(batch.global_rows);
      gnorm = std::sqrt(r.grad_norm_sq);
      batch = std::move(next);
    }
    const double mean_loss = loss_sum / double(n), secs = seconds_since(te);
    if (root) flow.save(ckpt, &adam, {{"train.epoch", std::to_string(epoch)}, {"train.loss", cat(mean_loss)}});
    json line{{"epoch", epoch}, {"loss", mean_loss}, {"seconds", secs}, {"steps", steps}, {"lr", cfg.lr},
              {"grad_norm", gnorm}};
    std::string tested;
    if (test) {
      const Scores sc = score_rows(flow, *test, all_rows(test->size()), cfg.device, "the test split", comm);
      line["test_auroc"] = auroc(sc.nll, test_anomalous);
      line["test_auroc_z2"] = auroc(sc.z2, test_anomalous);
      tested = cat(", test AUROC ", std::round(line["test_auroc"].get<double>() * 1e4) / 1e4);
    }
    log.push_back(line);
    if (root) {
      write_log(log_path, log);
      fmt::print(stderr, "epoch {}/{}: loss {:.5f}, {:.1f} s{}\n", epoch, cfg.epochs, mean_loss, secs, tested);
    }
    res.epochs_done = epoch;
    res.loss = mean_loss;
  }
  if (n_val > 0 && res.epochs_done > 0 && res.epochs_done >= cfg.epochs)  // every rank: the scoring is shared
    write_calibration(run_dir, flow, train, n, cfg.device, cfg.fpr, cfg.val_fraction, res.epochs_done, comm);
  // On return the run directory is complete for every rank (eval_run reads it next in oneclass).
  comm.barrier();
  res.seconds = seconds_since(t0);
  return res;
}

// ---- evaluation --------------------------------------------------------------------------------------------

json eval_run(const std::string& run_dir, const EvalOptions& opt, dist::Communicator& comm) {
  const auto t0 = std::chrono::steady_clock::now();
  RunConfig cfg = read_run_config(run_dir);
  if (opt.device) cfg.device = *opt.device;
  if (opt.cache_dir) cfg.cache_dir = *opt.cache_dir;
  const std::string ckpt = run_file(run_dir, "flow.safetensors");
  SANF_CHECK(fs::exists(ckpt), run_dir, ": no flow.safetensors (no training epoch has completed); run sanf train first");
  auto flow = flows::Flow::from_file(ckpt, DType::F32, cfg.device);
  const int64_t epoch = checkpoint_epoch(ckpt);
  SANF_CHECK(flow->config().same_architecture(cfg.flow), ckpt, ": its flow config differs from ", run_dir,
             "/config.json");

  const FeatureSet test = load_features(cfg.features(Split::Test), comm);
  const int64_t n = test.size();
  const std::vector<int> is_anom = anomalous_labels(test, cfg);
  const int64_t n_anom = std::count(is_anom.begin(), is_anom.end(), 1);
  SANF_CHECK(!opt.masks || test.all_local(), "--masks reads every test image's tokens on rank 0, but ", test.path(),
             " is sharded over per-node disks, not all of it on every node: evaluate with --masks on one "
             "node, or put the feature cache on a shared file system");
  const Scores scores = score_rows(*flow, test, all_rows(n), cfg.device, "the test split", comm);
  const std::vector<double>&nll_s = scores.nll, &z2_s = scores.z2;
  // The test rows from most to least anomalous, and the tokens of the first k for the anomaly maps, read
  // here by every rank together (a sharded set may hold them on other nodes) before rank 0 goes on alone.
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[size_t(i)] = i;
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return nll_s[size_t(a)] > nll_s[size_t(b)]; });
  const int64_t k = std::min<int64_t>(opt.thumbnails, n);
  const MapKind map_kind = opt.map == MapKind::Attention && cfg.flow.no_caff ? MapKind::Gradient : opt.map;
  const std::vector<int64_t> top(order.begin(), order.begin() + k);
  const bool want_maps = map_kind != MapKind::None && k > 0;
  std::pair<Tensor, Tensor> top_tokens;
  if (want_maps) top_tokens = test.batch(comm.is_root() ? top : std::vector<int64_t>{}, comm);
  if (!comm.is_root()) return json();  // rank 0 writes the outputs

  const double au = auroc(nll_s, is_anom), au_z2 = auroc(z2_s, is_anom), ap = average_precision(nll_s, is_anom);
  const F1Max f1 = f1_max(nll_s, is_anom);
  auto test_ds = open_dataset(cfg.dataset, cfg.data_dir, Split::Test, DatasetOptions{cfg.skip_corrupt});
  const std::vector<std::string>& names = test_ds->class_names();

  std::vector<std::string> paths;  // each test image's file (folder, mvtec; "" for the binary formats)
  for (int64_t i : test.indices()) paths.push_back(test_ds->path(i));
  write_scores_csv(run_file(run_dir, "scores.csv"), test.indices(), test.labels(), nll_s, z2_s, names, is_anom, paths);
  const std::string roc = roc_svg(roc_curve(nll_s, is_anom), au, "ROC, NLL score, normal class " + cfg.normal_name);
  const std::string hist = histogram_svg(nll_s, is_anom, "NLL score, normal class " + cfg.normal_name);
  write_file_atomic(run_file(run_dir, "roc.svg"), roc);
  write_file_atomic(run_file(run_dir, "hist_nll.svg"), hist);
  write_file_atomic(run_file(run_dir, "hist_z2.svg"),
                    histogram_svg(z2_s, is_anom, "mean z^2 score, normal class " + cfg.normal_name));

  json m{{"auroc", au},
         {"auroc_z2", au_z2},
         {"aupr", ap},
         {"f1_max", f1.f1},
         {"f1_threshold", f1.threshold},
         {"f1_precision", f1.precision},
         {"f1_recall", f1.recall},
         {"n_test", n},
         {"n_normal", n - n_anom},
         {"n_anomalous", n_anom},
         {"dataset", cfg.dataset},
         {"normal_class", cfg.normal_label},
         {"normal_name", cfg.normal_name},
         {"backbone", cfg.backbone.spec},
         {"backbone_random", cfg.backbone.is_random()},
         {"no_caff", cfg.flow.no_caff},
         {"epoch", epoch},
         {"config", cfg.identity()}};

  // The decision thresholds, each with what it reaches on the test split.
  const json thresholds = eval_thresholds(run_dir, nll_s, is_anom, epoch, opt.fpr);
  m["thresholds"] = thresholds;
  // The authors' protocol, when the log has it: the best test AUROC over the epochs (optimistic).
  double best = -1;
  int64_t best_epoch = 0, tested = 0;
  for (const json& line : read_log(run_file(run_dir, "train_log.jsonl"), epoch))
    if (line.contains("test_auroc")) {
      ++tested;
      if (line["test_auroc"].get<double>() > best) best = line["test_auroc"], best_epoch = line["epoch"];
    }
  if (tested > 0) {
    m["auroc_max_over_epochs"] = best;
    m["auroc_max_epoch"] = best_epoch;
    m["auroc_max_epochs_tested"] = tested;
    m["auroc_max_note"] = "the authors' protocol: the best test AUROC over the epochs, optimistic because the test "
                          "labels choose the epoch; auroc is the final epoch's, this project's reported figure";
  }

  ReportInput rep;
  rep.title = cat("sanf: ", cfg.dataset, ", normal class ", cfg.normal_label, " (", cfg.normal_name, ")");
  auto round4 = [](double v) { return cat(std::round(v * 1e4) / 1e4); };
  rep.metrics = {{"AUROC (NLL score)", round4(au)},
                 {"AUROC (mean z^2 score)", round4(au_z2)},
                 {"AUPR (NLL score)", round4(ap)},
                 {"F1 max (NLL score)", cat(round4(f1.f1), " at score >= ", f1.threshold)},
                 {"test images", cat(n, " (", n - n_anom, " normal, ", n_anom, " anomalous)")},
                 {"backbone", cfg.backbone.spec + (cfg.backbone.is_random() ? " (random weights, not pretrained)" : "")},
                 {"flow", cat(cfg.flow.layers, " layers, hidden ", cfg.flow.hidden_width(),
                              cfg.flow.no_caff ? ", no CAFF" : ", CAFF", ", epoch ", epoch)}};
  auto rates_text = [&](const json& t) {
    const json& r = t.at("test");
    return cat("score >= ", t.at("value").get<double>(), ": precision ", round4(r.at("precision")), ", recall ",
               round4(r.at("recall")), ", false-positive rate ", round4(r.at("fpr")), " on the test split");
  };
  rep.metrics.emplace_back("threshold F1 (chosen on the test labels)",
                           rates_text(thresholds.at("f1")) +
                               (thresholds.at("f1").at("flags_all").get<bool>() ? " (flags every test image: degenerate)" : ""));
  if (thresholds.contains("fpr"))
    rep.metrics.emplace_back(cat("threshold FPR ", thresholds.at("fpr").at("target").get<double>(),
                                 " (held-out normal images)"),
                             rates_text(thresholds.at("fpr")));
  if (tested > 0)
    rep.metrics.emplace_back("AUROC, best over epochs (authors' protocol, optimistic)",
                             cat(round4(best), " at epoch ", best_epoch, " of ", tested, " tested"));
  rep.roc_svg = roc;
  rep.histogram_svg = hist;
  auto thumb = [&](int64_t row) {
    const int64_t i = test.indices()[size_t(row)], label = test.labels()[size_t(row)];
    return Thumbnail{encode_png(test_ds->image(i)),
                     cat("#", i, " ", names[size_t(label)], is_anom[size_t(row)] ? " (anomalous)" : " (normal)",
                         ", score ", std::round(nll_s[size_t(row)] * 10) / 10)};
  };
  for (int64_t j = 0; j < k; ++j) rep.most_anomalous.push_back(thumb(order[size_t(j)]));
  for (int64_t j = 0; j < k; ++j) rep.most_normal.push_back(thumb(order[size_t(n - 1 - j)]));
  // Anomaly maps of the most anomalous images, each over its image and normalised to its own range.
  if (want_maps) {
    const auto& [y, P] = top_tokens;
    const Tensor maps = patch_maps(*flow, map_kind, to(y, cfg.device), to(P, cfg.device));
    rep.maps_title = cat("Anomaly maps (", map_kind_name(map_kind), ") of the most anomalous test images");
    // The same maps as one picture, maps.png: a row per image, the image, its ground-truth mask when the
    // dataset has masks, and the map over the image.
    std::vector<std::vector<Tensor>> sheet;
    for (int64_t j = 0; j < k; ++j) {
      const int64_t i = test.indices()[size_t(top[size_t(j)])];
      const Tensor image = test_ds->image(i), overlay = map_over_image(image, select(maps, 0, j));
      rep.maps.push_back(Thumbnail{encode_png(overlay), rep.most_anomalous[size_t(j)].caption});
      if (test_ds->has_masks()) {
        const Tensor mask = test_ds->mask(i);
        sheet.push_back({image, mask.defined() ? mask : zeros({1, image.size(1), image.size(2)}, DType::U8), overlay});
      } else {
        sheet.push_back({image, overlay});
      }
    }
    write_png(run_file(run_dir, "maps.png"), image_sheet(sheet, 128));
  } else {
    fs::remove(run_file(run_dir, "maps.png"));  // not this evaluation's
  }
  if (opt.masks) {
    m["pixel_auroc"] = pixel_aurocs(*flow, test, *test_ds, backbone_config(cfg.backbone).image_size, cfg.device);
    for (auto& [kind, v] : m["pixel_auroc"].items())
      if (v.is_number_float()) rep.metrics.emplace_back(cat("pixel AUROC, ", kind, " map"), round4(v.get<double>()));
  }
  write_report_html(run_file(run_dir, "report.html"), rep);
  m["seconds"] = seconds_since(t0);
  write_json_file(run_file(run_dir, "metrics.json"), m);  // last: its presence marks a finished evaluation
  return m;
}

}  // namespace sanf::apps
