// flows/config.cpp: validation and the metadata round trip of FlowConfig.
#include "flows/config.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "core/error.h"

namespace sanf::flows {

void FlowConfig::validate(const std::string& where) const {
  SANF_CHECK(dim >= 2 && dim % 2 == 0, where, ": flow.dim must be even and >= 2, got ", dim);
  SANF_CHECK(tokens >= 1 || (no_caff && tokens == 0), where, ": flow.tokens must be >= 1 (0 only with no_caff), got ",
             tokens);
  SANF_CHECK(layers >= 1, where, ": flow.layers must be >= 1, got ", layers);
  SANF_CHECK(hidden >= 0, where, ": flow.hidden must be >= 0 (0 = dim), got ", hidden);
  SANF_CHECK(std::isfinite(alpha) && alpha > 0, where, ": flow.alpha must be a positive number, got ", alpha);
  SANF_CHECK(heads >= 1 && half() % heads == 0, where, ": flow.heads (", heads,
             ") must be >= 1 and divide the half width dim/2 = ", half());
  SANF_CHECK(pool_grid >= 0, where, ": flow.pool_grid must be >= 0, got ", pool_grid);
  if (pool_grid > 0) {
    const auto G = int64_t(std::llround(std::sqrt(double(tokens))));
    SANF_CHECK(G * G == tokens && tokens > 0, where, ": flow.pool_grid needs flow.tokens to be a square grid, got ",
               tokens, " tokens");
    SANF_CHECK(pool_grid <= G, where, ": flow.pool_grid (", pool_grid, ") must not exceed the grid side ", G);
  }
}

std::map<std::string, std::string> FlowConfig::to_metadata() const {
  char a[64];
  std::snprintf(a, sizeof a, "%.17g", alpha);  // round-trips exactly
  return {{"flow.dim", std::to_string(dim)},
          {"flow.tokens", std::to_string(tokens)},
          {"flow.layers", std::to_string(layers)},
          {"flow.hidden", std::to_string(hidden_width())},
          {"flow.alpha", a},
          {"flow.heads", std::to_string(heads)},
          {"flow.qkv_bias", qkv_bias ? "true" : "false"},
          {"flow.no_caff", no_caff ? "true" : "false"},
          {"flow.pool_grid", std::to_string(pool_grid)},
          {"flow.seed", std::to_string(seed)}};
}

namespace {
const std::string& field(const std::map<std::string, std::string>& meta, const std::string& source,
                         const std::string& key) {
  auto it = meta.find(key);
  SANF_CHECK(it != meta.end(), source, ": flow metadata key '", key, "' is missing");
  return it->second;
}
int64_t parse_int(const std::map<std::string, std::string>& meta, const std::string& source, const std::string& key) {
  const std::string& s = field(meta, source, key);
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(s.c_str(), &end, 10);
  SANF_CHECK(!s.empty() && end == s.c_str() + s.size() && errno == 0, source, ": flow metadata key '", key,
             "' must be an integer, got '", s, "'");
  return int64_t(v);
}
uint64_t parse_u64(const std::map<std::string, std::string>& meta, const std::string& source, const std::string& key) {
  const std::string& s = field(meta, source, key);
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  SANF_CHECK(!s.empty() && s[0] != '-' && end == s.c_str() + s.size() && errno == 0, source, ": flow metadata key '",
             key, "' must be a non-negative integer, got '", s, "'");
  return uint64_t(v);
}
double parse_double(const std::map<std::string, std::string>& meta, const std::string& source, const std::string& key) {
  const std::string& s = field(meta, source, key);
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  SANF_CHECK(!s.empty() && end == s.c_str() + s.size(), source, ": flow metadata key '", key,
             "' must be a number, got '", s, "'");
  return v;
}
bool parse_bool(const std::map<std::string, std::string>& meta, const std::string& source, const std::string& key) {
  const std::string& s = field(meta, source, key);
  SANF_CHECK(s == "true" || s == "false", source, ": flow metadata key '", key, "' must be true or false, got '", s,
             "'");
  return s == "true";
}
}  // namespace

FlowConfig FlowConfig::from_metadata(const std::map<std::string, std::string>& meta, const std::string& source) {
  FlowConfig c;
  c.dim = parse_int(meta, source, "flow.dim");
  c.tokens = parse_int(meta, source, "flow.tokens");
  c.layers = parse_int(meta, source, "flow.layers");
  c.hidden = parse_int(meta, source, "flow.hidden");
  c.alpha = parse_double(meta, source, "flow.alpha");
  c.heads = parse_int(meta, source, "flow.heads");
  c.qkv_bias = parse_bool(meta, source, "flow.qkv_bias");
  c.no_caff = parse_bool(meta, source, "flow.no_caff");
  c.pool_grid = parse_int(meta, source, "flow.pool_grid");
  c.seed = parse_u64(meta, source, "flow.seed");
  c.validate(source);
  return c;
}

bool FlowConfig::same_architecture(const FlowConfig& o) const {
  return dim == o.dim && tokens == o.tokens && layers == o.layers && hidden_width() == o.hidden_width() &&
         alpha == o.alpha && heads == o.heads && qkv_bias == o.qkv_bias && no_caff == o.no_caff &&
         pool_grid == o.pool_grid;
}

}  // namespace sanf::flows
