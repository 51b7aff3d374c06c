// tests/vit/test_vit_bf16.cpp: the backbone's bf16 inference path on the CPU (VisionTransformer::
// set_precision(BF16)): it is exactly the f32 forward with every GEMM operand rounded to bf16 (checked
// against a forward written out here with explicit roundings), its tokens differ from f32's by bf16
// rounding (not 0, not large), it refuses to record gradients, and switching back to f32 restores f32.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "tests/testing/gradcheck.h"
#include "vit/vit.h"

using namespace sanf;
using sanf::testing::rel_l2;
using vit::ViTConfig;

namespace {

ViTConfig small_config() {
  ViTConfig c;
  c.name = "vit-t";
  c.image_size = 16, c.patch_size = 4, c.dim = 32, c.depth = 2, c.heads = 4;
  return c;
}

// timm's init makes the blocks nearly identities (weights of std 0.02); give every matrix weight a
// realistic scale (std 1/sqrt(fan_in)) so the attention and MLP GEMMs carry the signal the test checks.
void realistic_weights(vit::VisionTransformer& m, uint64_t seed) {
  Generator gen(seed);
  for (auto& [name, p] : m.named_parameters()) {
    if (name.size() < 6 || name.compare(name.size() - 6, 6, "weight") != 0 || p->dim() < 2) continue;
    const double fan_in = double(p->numel() / p->size(0));
    Tensor w = detach(mul(randn(p->shape(), DType::F32, Device::CPU, &gen), 1.0 / std::sqrt(fan_in)));
    w.set_requires_grad(true);
    *p = w;
  }
}

Tensor r(const Tensor& x) { return to(to(x, DType::BF16), DType::F32); }  // round to bf16, back to f32
Tensor lin(const Tensor& x, const nn::Linear& l) { return linear(r(x), r(l.weight), l.bias); }

// The bf16 forward written out from vit/vit.h, nn/attention.h and vit/block.h, with each GEMM operand
// rounded explicitly and the f32 ops doing everything else.
Tensor reference_bf16_forward(vit::VisionTransformer& m, const Tensor& images) {
  const int64_t B = images.size(0), D = m.cfg.dim;
  Tensor x =
      linear(r(patchify(images, m.patch_embed.patch)), r(reshape(m.patch_embed.weight, {D, -1})), m.patch_embed.bias);
  x = concat({expand(m.cls_token, {B, 1, D}), x}, 1) + m.pos_embed;
  for (auto& blk : m.blocks) {
    const nn::Attention& at = blk->attn;
    const Tensor h = blk->norm1.forward(x);
    const int64_t N = h.size(1);
    const Tensor t = permute(reshape(lin(h, at.qkv), {B, N, 3, at.heads, at.head_dim}), {2, 0, 3, 1, 4});
    const Tensor q = mul(select(t, 0, 0), at.scale), k = select(t, 0, 1), v = select(t, 0, 2);
    const Tensor a = softmax(matmul(r(q), transpose(r(k), -2, -1)), -1);
    const Tensor o = reshape(transpose(matmul(r(a), r(v)), 1, 2), {B, N, D});
    x = x + lin(o, at.proj);
    const Tensor g = linear_gelu(r(blk->norm2.forward(x)), r(blk->mlp.fc1.weight), blk->mlp.fc1.bias);
    x = x + lin(g, blk->mlp.fc2);
  }
  return m.norm.forward(x);
}

}  // namespace

TEST_CASE("vit bf16: the forward is the f32 forward on bf16-rounded GEMM operands, bit for bit") {
  Generator g(11);
  vit::VisionTransformer m(small_config(), {&g});
  realistic_weights(m, 12);
  const Tensor images = randn({3, 3, 16, 16}, DType::F32, Device::CPU, &g);
  NoGradGuard no_grad;
  const Tensor y32 = m.forward(images);
  m.set_precision(nn::MatmulPrecision::BF16);
  CHECK(m.precision() == nn::MatmulPrecision::BF16);
  CHECK(m.blocks[0]->attn.qkv.weight_bf16.dtype() == DType::BF16);
  CHECK(m.patch_embed.weight_bf16.shape() == Shape{32, 3 * 4 * 4});
  const Tensor y16 = m.forward(images);
  CHECK(y16.dtype() == DType::F32);
  CHECK(y16.shape() == y32.shape());

  const Tensor want = reference_bf16_forward(m, images);
  const std::vector<double> got = y16.to_vector(), ref = want.to_vector();
  size_t differ = 0;
  for (size_t i = 0; i < got.size(); ++i) differ += got[i] != ref[i];
  CHECK_MESSAGE(differ == 0, differ, " of ", got.size(), " tokens differ from the explicitly rounded reference");

  // Against f32: bf16's 8-bit mantissa, through patch embedding, 2 blocks and the final norm.
  const double err = rel_l2(y16, y32);
  MESSAGE("bf16 vs f32 backbone tokens, relative L2 error: ", err);
  CHECK(err > 1e-3);
  CHECK(err < 5e-2);

  // Back to f32: the copies are dropped and the f32 tokens return exactly.
  m.set_precision(nn::MatmulPrecision::F32);
  CHECK(!m.blocks[0]->mlp.fc1.weight_bf16.defined());
  CHECK(m.forward(images).to_vector() == y32.to_vector());
}

TEST_CASE("vit bf16: inference only, with a message that says so") {
  Generator g(13);
  vit::VisionTransformer m(small_config(), {&g});
  m.set_precision(nn::MatmulPrecision::BF16);
  const Tensor images = randn({1, 3, 16, 16}, DType::F32, Device::CPU, &g);
  CHECK_THROWS_WITH_AS(m.forward(images),
                       doctest::Contains("[VisionTransformer] vit-t is in bf16 precision, which is inference-only"),
                       Error);
  // Without trainable parameters (or under NoGradGuard) it runs.
  m.set_requires_grad(false);
  CHECK(m.forward(images).shape() == Shape{1, 17, 32});
  // A Linear on its own refuses too (the op names itself).
  nn::Linear l(8, 4, true, {&g});
  l.set_precision(nn::MatmulPrecision::BF16);
  CHECK_THROWS_WITH_AS(l.forward(ones({2, 8})), doctest::Contains("[linear_bf16] is inference-only"), Error);
}
