// core/error.h: the project's one exception type and the checking macros.
//
// Library code throws sanf::Error; only main() turns errors into exit codes. Messages say what and where:
// ops prefix "[opname]" and print the shapes; SANF_CHECK appends the source file and line.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace sanf {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// cat(a, b, c...): concatenate anything that has operator<< into a std::string.
template <typename... Args>
std::string cat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}

[[noreturn]] void throw_error(const std::string& msg, const char* file, int line);

}  // namespace sanf

// SANF_CHECK(cond, parts...): throw sanf::Error("parts... (file:line)") unless cond holds.
#define SANF_CHECK(cond, ...)                                                      \
  do {                                                                             \
    if (!(cond)) ::sanf::throw_error(::sanf::cat(__VA_ARGS__), __FILE__, __LINE__); \
  } while (0)

// SANF_FAIL(parts...): throw unconditionally.
#define SANF_FAIL(...) ::sanf::throw_error(::sanf::cat(__VA_ARGS__), __FILE__, __LINE__)
