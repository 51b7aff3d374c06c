// tests/tools/checkpoint_diff.cpp: compares the tensors of two safetensors files, for the multi-process tests
// (tests/dist/dist_test.sh): training under N ranks must give the parameters one process gives.
//
//   checkpoint_diff A B TOL [--skip PREFIX]... [--tiny T]
//
// Both files must hold the same tensor names (less the skipped prefixes) with the same shapes. For each tensor
// the relative difference is max|a - b| / max|a|; it must be <= TOL. A tensor whose every value in A is below
// T in magnitude (default 0: none) is compared absolutely instead: max|a - b| <= T. (Such tensors are rounding
// noise: e.g. the bias of an attention's keys has an exactly zero gradient, since softmax ignores a constant
// added to every logit, so what training leaves in it is accumulated rounding, ~1e-9.) Prints the largest
// relative difference with its tensor, and the tiny tensors' largest absolute one, and exits 0 when all pass,
// 1 when one does not or the files do not match (naming the tensor), 2 on a usage error.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "core/safetensors.h"

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: checkpoint_diff A B TOL [--skip PREFIX]...\n");
    return 2;
  }
  const std::string a_path = argv[1], b_path = argv[2];
  const double tol = std::atof(argv[3]);
  std::vector<std::string> skip;
  double tiny = 0;
  for (int i = 4; i + 1 < argc; i += 2) {
    if (std::string(argv[i]) == "--skip") {
      skip.push_back(argv[i + 1]);
    } else if (std::string(argv[i]) == "--tiny") {
      tiny = std::atof(argv[i + 1]);
    } else {
      std::fprintf(stderr, "checkpoint_diff: unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  try {
    const sanf::SafetensorsFile a = sanf::SafetensorsFile::open(a_path), b = sanf::SafetensorsFile::open(b_path);
    auto names = [&](const sanf::SafetensorsFile& f) {
      std::set<std::string> s;
      for (const auto& e : f.entries()) {
        bool skipped = false;
        for (const std::string& p : skip) skipped = skipped || e.name.rfind(p, 0) == 0;
        if (!skipped) s.insert(e.name);
      }
      return s;
    };
    const std::set<std::string> na = names(a), nb = names(b);
    for (const std::string& n : na)
      if (!nb.count(n)) return std::fprintf(stderr, "checkpoint_diff: %s has %s, %s does not\n", a_path.c_str(), n.c_str(), b_path.c_str()), 1;
    for (const std::string& n : nb)
      if (!na.count(n)) return std::fprintf(stderr, "checkpoint_diff: %s has %s, %s does not\n", b_path.c_str(), n.c_str(), a_path.c_str()), 1;
    double worst = 0, worst_tiny = 0;
    std::string worst_name, worst_tiny_name;
    int64_t n_tiny = 0;
    for (const std::string& n : na) {
      const sanf::Tensor ta = a.get(n), tb = b.get(n);
      if (ta.shape() != tb.shape())
        return std::fprintf(stderr, "checkpoint_diff: %s: shapes %s and %s\n", n.c_str(), ta.info().c_str(), tb.info().c_str()), 1;
      const std::vector<double> va = ta.to_vector(), vb = tb.to_vector();
      double diff = 0, scale = 0;
      for (size_t i = 0; i < va.size(); ++i) {
        const double d = std::fabs(va[i] - vb[i]);
        diff = std::isnan(d) ? INFINITY : std::max(diff, d);
        scale = std::max(scale, std::fabs(va[i]));
      }
      if (scale < tiny) {
        ++n_tiny;
        if (diff >= worst_tiny) worst_tiny = diff, worst_tiny_name = n;
        continue;
      }
      const double rel = scale > 0 ? diff / scale : diff;
      if (rel >= worst) worst = rel, worst_name = n;
    }
    std::printf("checkpoint_diff: %zu tensors, largest relative difference %.3g (%s), tolerance %g", na.size(), worst,
                worst_name.c_str(), tol);
    if (n_tiny > 0)
      std::printf("; %lld tensors below %g compared absolutely, largest difference %.3g (%s)", (long long)n_tiny, tiny,
                  worst_tiny, worst_tiny_name.c_str());
    std::printf("\n");
    return na.empty() || worst > tol || worst_tiny > tiny ? 1 : 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "checkpoint_diff: %s\n", e.what());
    return 1;
  }
}
