// apps/progress.h: the progress line of a long pass over images, on stderr, rewritten in place:
//   "\rextract: 1200/10000 images, 85.3 img/s, ETA 103 s   "
// The rate is images done over the time since the Progress was made; the line is ended (a newline) by
// finish() or the destructor, so an error message that follows starts on its own line. An inactive Progress
// (on = false: not asked for, or a rank other than 0) prints nothing.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace sanf::apps {

class Progress {
 public:
  Progress(std::string what, int64_t total, bool on = true) : what_(std::move(what)), total_(total), on_(on) {}
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  ~Progress() { finish(); }

  // `done` of the total images are done.
  void update(int64_t done) {
    if (!on_) return;
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    const double rate = double(done) / std::max(s, 1e-9);
    fmt::print(stderr, "\r{}: {}/{} images, {:.1f} img/s, ETA {:.0f} s   ", what_, done, total_, rate,
               rate > 0 ? double(total_ - done) / rate : 0.0);
    printed_ = true;
  }
  // Ends the line if anything was printed (once).
  void finish() {
    if (printed_) std::fputc('\n', stderr);
    printed_ = false;
  }

 private:
  std::string what_;
  int64_t total_;
  bool on_, printed_ = false;
  std::chrono::steady_clock::time_point t0_ = std::chrono::steady_clock::now();
};

}  // namespace sanf::apps
