// core/error.cpp: the one place errors are built, so a debugger breakpoint here catches them all.
#include "core/error.h"

namespace sanf {

void throw_error(const std::string& msg, const char* file, int line) {
  const char* base = file;
  for (const char* p = file; *p; ++p)
    if (*p == '/') base = p + 1;
  throw Error(cat(msg, " (", base, ":", line, ")"));
}

}  // namespace sanf
