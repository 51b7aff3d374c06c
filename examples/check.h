// examples/check.h: how every example checks what it shows, so that none can rot.
//
// check(ok, what, ...) prints "  ok      what" or "  FAILED  what" (printf-style) and counts the failures;
// each example ends with `return finish("NN_name");`, which prints a summary line and returns the exit
// status: 0 when every check passed, 1 otherwise (ctest runs every example and fails on 1).
#pragma once

#include <cstdarg>
#include <cstdio>

namespace example {

inline int& failures() {
  static int n = 0;
  return n;
}

[[gnu::format(printf, 2, 3)]] inline bool check(bool ok, const char* what, ...) {
  std::printf("  %-7s ", ok ? "ok" : "FAILED");
  va_list args;
  va_start(args, what);
  std::vprintf(what, args);
  va_end(args);
  std::printf("\n");
  if (!ok) ++failures();
  return ok;
}

inline int finish(const char* name) {
  if (failures() == 0) {
    std::printf("%s: every check passed\n", name);
    return 0;
  }
  std::printf("%s: %d check(s) FAILED\n", name, failures());
  return 1;
}

}  // namespace example
