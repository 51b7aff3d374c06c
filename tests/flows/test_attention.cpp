// tests/flows/test_attention.cpp: CAFF's class attention: the rearranged forward equals the direct formula,
// and the weights it records for anomaly maps are the forward's own.
#include <doctest/doctest.h>

#include "flows/flow.h"
#include "tests/flows/flow_testing.h"

using namespace sanf;
using namespace sanf::flows;
using namespace sanf::flows::testing_helpers;
using sanf::testing::closeness;
using sanf::testing::rnd;

TEST_CASE("class attention: the rearranged forward equals the direct formula over [h, Q]") {
  for (bool with_tokens : {true, false}) {
    for (bool bias : {true, false}) {
      CAPTURE(with_tokens);
      CAPTURE(bias);
      Generator gen(3);
      ClassAttention attn(12, 10, 3, bias, nn::InitOptions{&gen, DType::F64});
      randomize(attn, 5, 0.4);
      const Tensor h = rnd({4, 12}, 1), Q = with_tokens ? rnd({4, 7, 12}, 2) : Tensor();
      attn.record = true;
      const Tensor fast = attn.forward(h, Q);
      Tensor weights;
      const Tensor direct = attn.forward_direct(h, Q, &weights);
      CHECK(closeness(fast, direct, 1e-12, 1e-12) <= 1.0);
      REQUIRE(attn.recorded.shape() == Shape{4, with_tokens ? 8 : 1, 3});
      CHECK(closeness(attn.recorded, weights, 1e-12, 1e-12) <= 1.0);
      // Each head's weights over the N+1 keys sum to 1.
      CHECK(closeness(sum(attn.recorded, {1}), ones({4, 3}, DType::F64), 1e-12, 1e-12) <= 1.0);
    }
  }
}

TEST_CASE("flow attention: patch_attention is the mean of every CAFF's weights on the patch tokens") {
  for (int64_t pool : {0, 2}) {
    CAPTURE(pool);
    FlowConfig cfg = small_config(8, 16, 2, 6, 2);
    cfg.pool_grid = pool;
    Flow flow(cfg, DType::F64);
    randomize(flow, 9, 0.5);
    const Tensor y = rnd({3, 8}, 4), P = rnd({3, 16, 8}, 5);
    CHECK_THROWS_WITH_AS(flow.patch_attention(), doctest::Contains("no attention recorded"), Error);
    flow.record_attention(true);
    const Flow::Output recorded_run = flow.forward(y, P);
    const Tensor map = flow.patch_attention();
    const int64_t n = pool ? pool * pool : 16;
    REQUIRE(map.shape() == Shape{3, n});
    // By hand: the four CAFFs' recorded weights, patch rows only, mean over heads, mean over CAFFs.
    Tensor want = zeros({3, n}, DType::F64);
    for (int64_t k = 0; k < 2; ++k)
      for (CAFF* c : {&flow.layer(k).caff1, &flow.layer(k).caff2})
        want = want + mean(narrow(c->attn.recorded, 1, 1, n), {2}) * 0.25;
    CHECK(closeness(map, want, 1e-6, 1e-7) <= 1.0);
    // Recording does not change the forward's numbers.
    flow.record_attention(false);
    CHECK(flow.forward(y, P).z.to_vector() == recorded_run.z.to_vector());
  }
  FlowConfig cfg = small_config();
  cfg.no_caff = true;
  Flow ablation(cfg);
  CHECK_THROWS_WITH_AS(ablation.patch_attention(), doctest::Contains("no-CAFF flow attends to no patch token"), Error);
}
