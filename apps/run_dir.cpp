// apps/run_dir.cpp: a run directory's files (see apps/run_dir.h).
#include "apps/run_dir.h"

#include <filesystem>
#include <fstream>
#include <map>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/safetensors.h"

namespace sanf::apps {

namespace fs = std::filesystem;
using nlohmann::json;

json read_json_file(const std::string& path) {
  std::ifstream f(path);
  SANF_CHECK(f.good(), path, ": cannot open");
  try {
    return json::parse(f);
  } catch (const json::exception& e) {
    SANF_FAIL(path, ": not valid JSON: ", e.what());
  }
}

void write_json_file(const std::string& path, const json& j) { write_file_atomic(path, j.dump(2) + "\n"); }

std::string run_file(const std::string& run_dir, const char* name) { return (fs::path(run_dir) / name).string(); }

// The epochs in an existing train_log.jsonl, up to and including `last_epoch`.
std::vector<json> read_log(const std::string& path, int64_t last_epoch) {
  std::vector<json> lines;
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty()) continue;
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("epoch")) continue;  // a torn line from an older, non-atomic writer
    if (j["epoch"].get<int64_t>() <= last_epoch) lines.push_back(j);
  }
  return lines;
}

void write_log(const std::string& path, const std::vector<json>& lines) {
  std::string text;
  for (const json& j : lines) text += j.dump() + "\n";
  write_file_atomic(path, text);
}

int64_t checkpoint_epoch(const std::string& flow_checkpoint) {
  const std::map<std::string, std::string> meta = SafetensorsFile::open(flow_checkpoint).metadata();
  return meta.count("train.epoch") ? std::stoll(meta.at("train.epoch")) : 0;
}

}  // namespace sanf::apps
