// tests/flows/test_checkpoint.cpp: FlowConfig validation and metadata, and flow checkpoints: a saved flow
// reloads and scores identically, Adam resumes exactly, and bad files are refused naming what is wrong.
#include <doctest/doctest.h>

#include <cstdio>

#include "core/safetensors.h"
#include "flows/flow.h"
#include "tests/flows/flow_testing.h"

using namespace sanf;
using namespace sanf::flows;
using namespace sanf::flows::testing_helpers;

namespace {
void train(Flow& flow, nn::Adam& opt, const Tensor& y, const Tensor& P, int steps) {
  for (int i = 0; i < steps; ++i) {
    opt.zero_grad();
    backward(nll_loss(flow.forward(y, P)));
    opt.step();
  }
}
}  // namespace

TEST_CASE("flow config: metadata round trip and validation errors name the key") {
  FlowConfig c = small_config(16, 9, 3, 0, 4);
  c.alpha = 2.5, c.qkv_bias = false, c.no_caff = true, c.pool_grid = 2, c.seed = 18446744073709551615ull;
  auto meta = c.to_metadata();
  CHECK(meta.at("flow.hidden") == "16");  // resolved: 0 means D
  FlowConfig back = FlowConfig::from_metadata(meta, "m.safetensors");
  CHECK(back.same_architecture(c));
  CHECK(back.seed == c.seed);
  CHECK(back.to_metadata() == meta);

  auto bad = [&](const std::string& key, const std::string& value, const std::string& message) {
    auto m = meta;
    if (value.empty())
      m.erase(key);
    else
      m[key] = value;
    CAPTURE(key);
    CHECK_THROWS_WITH_AS(FlowConfig::from_metadata(m, "m.safetensors"), doctest::Contains(message.c_str()), Error);
  };
  bad("flow.alpha", "", "m.safetensors: flow metadata key 'flow.alpha' is missing");
  bad("flow.layers", "4x", "m.safetensors: flow metadata key 'flow.layers' must be an integer, got '4x'");
  bad("flow.qkv_bias", "yes", "'flow.qkv_bias' must be true or false, got 'yes'");
  bad("flow.seed", "-1", "'flow.seed' must be a non-negative integer");
  bad("flow.alpha", "three", "'flow.alpha' must be a number, got 'three'");
  bad("flow.dim", "15", "m.safetensors: flow.dim must be even");
  bad("flow.heads", "3", "m.safetensors: flow.heads (3) must be >= 1 and divide the half width dim/2 = 8");
  bad("flow.alpha", "-1", "flow.alpha must be a positive number");
  bad("flow.layers", "0", "flow.layers must be >= 1");
  bad("flow.tokens", "10", "flow.pool_grid needs flow.tokens to be a square grid, got 10 tokens");
  bad("flow.pool_grid", "4", "flow.pool_grid (4) must not exceed the grid side 3");

  FlowConfig none = small_config(8, 0);
  CHECK_THROWS_WITH_AS(none.validate(), doctest::Contains("flow.tokens must be >= 1 (0 only with no_caff), got 0"),
                       Error);
  none.no_caff = true;
  none.validate();
  FlowConfig odd = small_config(7);
  CHECK_THROWS_WITH_AS(Flow{odd}, doctest::Contains("flow config: flow.dim must be even"), Error);
}

TEST_CASE("flow checkpoint: a saved flow reloads and scores identically") {
  FlowConfig cfg = small_config(16, 4, 3, 12, 4);
  Flow flow(cfg);
  randomize(flow, 61);
  Tensor y = randn({5, 16}), P = randn({5, 4, 16});
  nn::Adam opt(flow.named_parameters(), {.lr = 1e-3, .beta1 = 0.8, .beta2 = 0.8, .eps = 1e-4, .weight_decay = 1e-5});
  train(flow, opt, y, P, 3);
  const std::string path = tmp_path("roundtrip");
  flow.save(path, &opt, {{"vit.arch", "vit-small"}});

  SafetensorsFile f = SafetensorsFile::open(path);
  CHECK(f.metadata().at("vit.arch") == "vit-small");
  CHECK(f.metadata().at("flow.layers") == "3");
  CHECK(f.contains("layers.2.perm"));
  CHECK(f.entry("layers.2.perm").dtype == DType::I64);
  CHECK(f.contains("adam.exp_avg.layers.0.caff1.fuse.weight"));

  auto loaded = Flow::from_file(path);  // built from the metadata alone, then strict-loaded
  CHECK(loaded->config().same_architecture(cfg));
  for (int64_t k = 0; k < 3; ++k) CHECK(loaded->layer(k).perm.to_vector() == flow.layer(k).perm.to_vector());
  Flow::Output a = flow.forward(y, P), b = loaded->forward(y, P);
  CHECK(a.z.to_vector() == b.z.to_vector());
  CHECK(nll(a).to_vector() == nll(b).to_vector());
  CHECK(mean_z2(a.z).to_vector() == mean_z2(b.z).to_vector());
  CHECK(loaded->inverse(b.z, P).to_vector() == flow.inverse(a.z, P).to_vector());

  // With the optimiser state restored, training continues exactly as if it had never stopped.
  nn::Adam opt2(loaded->named_parameters(), opt.options());
  loaded->load(path, &opt2);
  train(flow, opt, y, P, 2);
  train(*loaded, opt2, y, P, 2);
  CHECK(flow.forward(y, P).z.to_vector() == loaded->forward(y, P).z.to_vector());
  std::remove(path.c_str());
}

TEST_CASE("flow checkpoint: bad files are refused and leave the flow untouched") {
  FlowConfig cfg = small_config(8, 3, 2, 8, 2);
  Flow flow(cfg);
  randomize(flow, 71);
  const std::string path = tmp_path("bad");
  flow.save(path);

  FlowConfig other = cfg;
  other.hidden = 6;
  Flow wrong(other);
  CHECK_THROWS_WITH_AS(wrong.load(path),
                       doctest::Contains((path + ": flow.hidden is 8 in the file, but this flow has 6").c_str()),
                       Error);
  CHECK_THROWS_WITH_AS(Flow::from_file("/nonexistent/flow.safetensors"),
                       doctest::Contains("/nonexistent/flow.safetensors"), Error);

  // Rewrite the file with one tensor missing, one extra, or a permutation that repeats an entry.
  std::vector<std::pair<std::string, Tensor>> tensors = flow.state_dict();
  auto meta = cfg.to_metadata();
  Flow target(cfg);
  const std::vector<double> before = target.layer(0).caff1.fuse.weight.to_vector();
  auto expect_refused = [&](std::vector<std::pair<std::string, Tensor>> ts, const std::string& message) {
    save_safetensors(path, ts, meta);
    CHECK_THROWS_WITH_AS(target.load(path), doctest::Contains(message.c_str()), Error);
    CHECK(target.layer(0).caff1.fuse.weight.to_vector() == before);
  };
  {
    auto ts = tensors;
    ts.erase(ts.begin() + 3);
    expect_refused(ts, "1 tensor(s) missing: " + tensors[3].first);
  }
  {
    auto ts = tensors;
    ts.push_back({"layers.9.perm", arange(8)});
    expect_refused(ts, "1 unexpected tensor(s): layers.9.perm");
  }
  {
    auto ts = tensors;
    for (auto& [n, t] : ts)
      if (n == "layers.1.perm") t = Tensor::from_vector({0, 1, 2, 3, 4, 5, 6, 6}, {8}, DType::I64);
    expect_refused(ts, "tensor 'layers.1.perm': not a permutation of 0..7 (entry 7 is 6, repeated)");
  }
  {
    // Adam state whose shape does not fit: neither the flow nor the optimiser changes.
    auto ts = tensors;
    ts.push_back({"adam.step.layers.0.caff1.fuse.weight", Tensor::from_vector({1}, {}, DType::I64)});
    ts.push_back({"adam.exp_avg.layers.0.caff1.fuse.weight", zeros({3})});
    ts.push_back({"adam.exp_avg_sq.layers.0.caff1.fuse.weight", zeros({3})});
    save_safetensors(path, ts, meta);
    nn::Adam opt(target.named_parameters(), {});
    CHECK_THROWS_WITH_AS(target.load(path, &opt), doctest::Contains("optimiser state of 'layers.0.caff1.fuse.weight'"),
                         Error);
    CHECK(target.layer(0).caff1.fuse.weight.to_vector() == before);
    CHECK(opt.state_dict().empty());
    target.load(path);  // without an optimiser the adam.* entries are ignored
    CHECK(target.layer(0).caff1.fuse.weight.to_vector() == flow.layer(0).caff1.fuse.weight.to_vector());
  }
  std::remove(path.c_str());
}
