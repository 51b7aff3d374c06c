// tests/vit/test_vit_gradcheck.cpp: finite-difference gradient checks (f64) of Attention, Mlp, Block and a
// whole tiny ViT, with respect to their inputs and, by swapping them in, some of their weights.
#include <doctest/doctest.h>

#include "tests/testing/gradcheck.h"
#include "vit/vit.h"

using namespace sanf;
using namespace sanf::testing;

namespace {
// Replace every parameter by a random f64 value of a sizeable scale (timm's init, std 0.02 and zero biases,
// would leave attention nearly uniform and many paths numerically idle).
void randomise(nn::Module& m, uint64_t seed) {
  for (auto& [name, t] : m.named_parameters()) *t = rnd(t->shape(), seed++, 0.5).set_requires_grad(true);
}
}  // namespace

TEST_CASE("gradcheck: nn::Attention (with and without qkv bias)") {
  for (bool bias : {true, false}) {
    CAPTURE(bias);
    Generator g(1);
    nn::Attention attn(8, 2, bias, {&g, DType::F64});  // D 8, 2 heads of 4
    randomise(attn, 10);
    std::vector<Tensor> in = {rnd({2, 4, 8}, 1), detach(attn.qkv.weight), detach(attn.proj.weight),
                              detach(attn.proj.bias)};
    if (bias) in.push_back(detach(attn.qkv.bias));
    gradcheck(
        "Attention",
        [&](const std::vector<Tensor>& v) {
          attn.qkv.weight = v[1], attn.proj.weight = v[2], attn.proj.bias = v[3];
          if (v.size() > 4) attn.qkv.bias = v[4];
          return attn.forward(v[0]);
        },
        in);
  }
  Generator g(2);
  nn::Attention attn(8, 2, true, {&g});
  CHECK_THROWS_WITH_AS(attn.forward(zeros({2, 4, 6})),
                       doctest::Contains("[Attention] input must be (B, N, 8), got (2, 4, 6)"), Error);
  CHECK_THROWS_WITH_AS(nn::Attention(10, 4), doctest::Contains("dim 10 is not divisible by the number of heads 4"),
                       Error);
}

TEST_CASE("gradcheck: nn::Mlp") {
  Generator g(3);
  nn::Mlp mlp(8, 16, {&g, DType::F64});
  randomise(mlp, 20);
  gradcheck("Mlp",
            [&](const std::vector<Tensor>& v) {
              mlp.fc1.weight = v[1], mlp.fc1.bias = v[2], mlp.fc2.weight = v[3];
              return mlp.forward(v[0]);
            },
            {rnd({2, 4, 8}, 2), detach(mlp.fc1.weight), detach(mlp.fc1.bias), detach(mlp.fc2.weight)});
}

TEST_CASE("gradcheck: vit::Block") {
  Generator g(4);
  vit::Block block(8, 2, 16, true, 1e-6, {&g, DType::F64});
  randomise(block, 30);
  gradcheck("Block",
            [&](const std::vector<Tensor>& v) {
              block.norm1.weight = v[1], block.attn.qkv.weight = v[2], block.norm2.bias = v[3],
              block.mlp.fc1.weight = v[4];
              return block.forward(v[0]);
            },
            {rnd({2, 4, 8}, 3), detach(block.norm1.weight), detach(block.attn.qkv.weight), detach(block.norm2.bias),
             detach(block.mlp.fc1.weight)});
}

TEST_CASE("gradcheck: a tiny VisionTransformer (input and weights)") {
  vit::ViTConfig c;
  c.name = "vit-grad";
  c.image_size = 4, c.patch_size = 2, c.in_chans = 2, c.dim = 8, c.depth = 2, c.heads = 2, c.mlp_ratio = 2;
  Generator g(5);
  vit::VisionTransformer m(c, {&g, DType::F64});  // N = 4 patches, 5 tokens
  randomise(m, 40);
  gradcheck("VisionTransformer",
            [&](const std::vector<Tensor>& v) {
              m.pos_embed = v[1], m.cls_token = v[2], m.patch_embed.weight = v[3], m.blocks[0]->attn.qkv.weight = v[4];
              m.norm.bias = v[5];
              return m.forward(v[0]);
            },
            {rnd({2, 2, 4, 4}, 4), detach(m.pos_embed), detach(m.cls_token), detach(m.patch_embed.weight),
             detach(m.blocks[0]->attn.qkv.weight), detach(m.norm.bias)});
}
