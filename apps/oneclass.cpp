// apps/oneclass.cpp: the one-class protocol over several normal classes (apps/train.h oneclass_run).
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fmt/format.h>
#include <sstream>

#include "apps/features.h"
#include "apps/report.h"
#include "apps/run_dir.h"
#include "apps/train.h"
#include "core/atomic_file.h"

namespace sanf::apps {

namespace fs = std::filesystem;
using nlohmann::json;

json oneclass_run(const RunConfig& base, const std::string& out_dir, const OneClassOptions& opt,
                 dist::Communicator& comm) {
  SANF_CHECK(opt.parallel == "data" || opt.parallel == "classes", "--parallel must be data or classes, got '",
             opt.parallel, "'");
  const bool by_class = comm.size() > 1 && opt.parallel == "classes";
  auto ds = open_dataset(base.dataset, base.data_dir, Split::Train, DatasetOptions{base.skip_corrupt});
  const std::vector<std::string>& names = ds->class_names();
  std::vector<int64_t> labels;
  if (opt.classes == "all") {
    for (size_t i = 0; i < names.size(); ++i) labels.push_back(int64_t(i));
  } else {
    std::stringstream ss(opt.classes);
    std::string item;
    while (std::getline(ss, item, ','))
      labels.push_back(resolve_class(item, names, cat(base.dataset, " (", base.data_dir, ")")));
    SANF_CHECK(!labels.empty(), "--classes: no class given");
  }
  if (comm.is_root()) fs::create_directories(out_dir);
  comm.barrier();
  json rows = json::array();
  const auto t0 = std::chrono::steady_clock::now();
  if (by_class && !base.cache_dir.empty()) {
    // The test split every class is scored on: extracted once, by all ranks together, into the cache.
    RunConfig cfg = base;
    cfg.normal_class = std::to_string(labels.front());
    cfg.resolve();
    load_features(cfg.features(Split::Test), comm);
  }
  // Where each class runs: on every rank together, or (by_class) class i alone on rank i mod N.
  dist::Communicator& run_comm = by_class ? dist::Communicator::self() : comm;
  for (size_t i = 0; i < labels.size(); ++i) {
    const int64_t label = labels[i];
    if (by_class && int(i % size_t(comm.size())) != comm.rank()) {
      rows.push_back(json());  // filled in from its rank below
      continue;
    }
    RunConfig cfg = base;
    cfg.normal_class = std::to_string(label);
    const std::string run_dir = (fs::path(out_dir) / cat(label, "-", names[size_t(label)])).string();
    const std::string metrics_path = run_file(run_dir, "metrics.json");
    json m;
    bool skipped = false;
    if (fs::exists(metrics_path)) {
      cfg.resolve();
      const json old = read_json_file(metrics_path);
      const RunConfig stored = read_run_config(run_dir);
      if (old.value("config", json()) == cfg.identity() && old.value("epoch", int64_t(-1)) == cfg.epochs &&
          stored.identity() == cfg.identity()) {
        m = old;
        skipped = true;
        if (run_comm.is_root())
          fmt::print(stderr, "oneclass: class {} ({}) already done in {}\n", label, names[size_t(label)], run_dir);
      }
    }
    if (!skipped) {
      if (run_comm.is_root())
        fmt::print(stderr, "oneclass: class {} ({}) -> {}\n", label, names[size_t(label)], run_dir);
      train_run(cfg, run_dir, fs::exists(run_file(run_dir, "config.json")), run_comm);
      m = eval_run(run_dir, opt.eval, run_comm);
      if (!run_comm.is_root()) {
        rows.push_back(json());
        continue;
      }
    }
    rows.push_back(json{{"class", label},
                        {"name", names[size_t(label)]},
                        {"auroc", m.at("auroc")},
                        {"auroc_z2", m.at("auroc_z2")},
                        {"aupr", m.at("aupr")},
                        {"f1_max", m.at("f1_max")},
                        {"run", run_dir}});
  }
  if (by_class)  // every class's row from the rank that ran it
    for (size_t i = 0; i < labels.size(); ++i) {
      const int owner = int(i % size_t(comm.size()));
      const std::string row = comm.broadcast(owner == comm.rank() ? rows[i].dump() : std::string(), owner);
      rows[i] = json::parse(row);
    }
  if (!comm.is_root()) return json();
  auto mean_of = [&](const char* key) {
    double s = 0;
    for (const json& r : rows) s += r.at(key).get<double>();
    return s / double(rows.size());
  };
  json result{{"dataset", base.dataset},
              {"backbone", base.backbone.spec},
              {"backbone_random", base.backbone.is_random()},
              {"no_caff", base.flow.no_caff},
              {"epochs", base.epochs},
              {"classes", rows},
              {"mean", {{"auroc", mean_of("auroc")}, {"auroc_z2", mean_of("auroc_z2")}, {"aupr", mean_of("aupr")},
                        {"f1_max", mean_of("f1_max")}}},
              {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()}};
  std::string csv = "class,name,auroc,auroc_z2,aupr,f1_max\n", table;
  table += cat("\n", base.dataset, ", one-class AUROC (backbone ", base.backbone.spec,
               base.backbone.is_random() ? ", RANDOM weights" : "", base.flow.no_caff ? ", no CAFF" : "", ")\n");
  // Columns: class, name, AUROC, AUROC_z2, AUPR, F1max.
  auto row = [&table](const std::string& cls, const std::string& name, double a, double az, double ap, double f1) {
    table += fmt::format("{:<5} {:<14} {:>8.4f} {:>9.4f} {:>8.4f} {:>8.4f}\n", cls, name, a, az, ap, f1);
  };
  table += fmt::format("{:<5} {:<14} {:>8} {:>9} {:>8} {:>8}\n", "class", "name", "AUROC", "AUROC_z2", "AUPR", "F1max");
  for (const json& r : rows) {
    const std::string name = r.at("name");
    csv += cat(r.at("class").get<int64_t>(), ",", name, ",", r.at("auroc").get<double>(), ",",
               r.at("auroc_z2").get<double>(), ",", r.at("aupr").get<double>(), ",", r.at("f1_max").get<double>(), "\n");
    row(std::to_string(r.at("class").get<int64_t>()), name, r.at("auroc").get<double>(), r.at("auroc_z2").get<double>(),
        r.at("aupr").get<double>(), r.at("f1_max").get<double>());
  }
  row("mean", "", mean_of("auroc"), mean_of("auroc_z2"), mean_of("aupr"), mean_of("f1_max"));
  csv += cat("mean,,", mean_of("auroc"), ",", mean_of("auroc_z2"), ",", mean_of("aupr"), ",", mean_of("f1_max"), "\n");
  write_file_atomic((fs::path(out_dir) / "results.csv").string(), csv);
  write_json_file((fs::path(out_dir) / "results.json").string(), result);
  write_file_atomic((fs::path(out_dir) / "index.html").string(), index_html(result));
  fmt::print("{}({}/results.csv, results.json, index.html; {:.0f} s)\n", table, out_dir, result["seconds"].get<double>());
  return result;
}

}  // namespace sanf::apps
