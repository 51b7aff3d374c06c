// apps/run_dir.h: the files of a run directory (apps/train.h lists them), read and written one way for
// every command that touches a run: train, eval, predict, export, oneclass.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace sanf::apps {

// RUN/name.
std::string run_file(const std::string& run_dir, const char* name);

// A JSON file, whole (throws naming the file when it cannot be opened or parsed).
nlohmann::json read_json_file(const std::string& path);
// Pretty-printed, written atomically.
void write_json_file(const std::string& path, const nlohmann::json& j);

// train_log.jsonl: the epochs up to and including `last_epoch` (a torn or foreign line is skipped), and
// the log written whole, atomically.
std::vector<nlohmann::json> read_log(const std::string& path, int64_t last_epoch);
void write_log(const std::string& path, const std::vector<nlohmann::json>& lines);

// The training epoch a flow checkpoint holds ("train.epoch" in its metadata; 0 when absent).
int64_t checkpoint_epoch(const std::string& flow_checkpoint);

}  // namespace sanf::apps
