// tests/testing/stale_temp.h: temporary files as a killed writer leaves them (core/atomic_file.h), for the
// tests of reclaim_stale_temp_files and of the callers that sweep.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "core/atomic_file.h"
#include "tests/testing/temp_dir.h"

namespace sanf::testing {

// The PID of a child that has exited and been reaped: no process has it (until the kernel reuses it, which
// takes a full turn of the PID space).
inline pid_t dead_pid() {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return pid;
}

// "<dir>/<target>.tmp.<host>.<pid>" (host as temp_path_for writes it, unless `host` is given), holding
// `bytes`, last modified `age` ago.
inline std::filesystem::path plant_temp_file(const std::filesystem::path& dir, const std::string& target, long pid,
                                             std::chrono::seconds age, const std::string& bytes = "stale",
                                             const std::string& host = "") {
  std::string name = temp_path_for(target);                 // <target>.tmp.<host>.<our pid>
  name = name.substr(0, name.rfind('.') + 1) + std::to_string(pid);  // ... .<pid>
  if (!host.empty()) name = target + ".tmp." + host + "." + std::to_string(pid);
  const std::filesystem::path p = dir / name;
  write_file(p, bytes);
  std::filesystem::last_write_time(p, std::filesystem::file_time_type::clock::now() - age);
  return p;
}

}  // namespace sanf::testing
