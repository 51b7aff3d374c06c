// autograd/fast/attention_bf16.cpp: multi-head self-attention on the bf16 inference path, from the qkv
// projection's output to the heads side by side (what proj takes):
//   qkv (B, N, 3D) f32, laid out (B, N, 3, H, hd)  ->  (B, N, D), f32 or bf16
//   [q, k, v] = split;  P = bf16(softmax(bf16(q * scale) bf16(k)^T));  out = P bf16(v)
// As ops (the composite, on every device): split_qkv_bf16 for the heads' bf16 q (scaled), k and v in one
// pass, matmul_bf16 for the scores, softmax_bf16 for the weights, matmul_bf16 for P v, and one transpose
// copy. On CUDA, when the fused kernel
// is switched on (kernels/cuda_options.h) and fits the shape on this device, kernels/fast/attention.h computes
// the same in one kernel, without writing the (B, H, N, N) scores. Inference only.
#include "kernels/fast/attention.h"
#include "autograd/fast.h"
#include "autograd/ops/common.h"
#include "kernels/fast/split_qkv.h"

namespace sanf {

using namespace ops_detail;

namespace {
// qkv as both ops take it, an f32 (B, N, 3 * heads * hd) tensor outside autograd, checked for `op`; returns hd.
int64_t check_qkv(const char* op, const Tensor& qkv, int64_t heads) {
  SANF_CHECK(qkv.defined() && qkv.dtype() == DType::F32 && qkv.dim() == 3, "[", op,
             "] qkv must be an f32 (B, N, 3 * D) tensor, got ", qkv.defined() ? qkv.info() : "an undefined tensor");
  const int64_t D3 = qkv.size(2);
  SANF_CHECK(heads > 0 && D3 % (3 * heads) == 0, "[", op, "] qkv's width ", D3, " is not 3 x ", heads,
             " heads x a head width");
  check_inference(op, {qkv});
  return D3 / 3 / heads;
}
}  // namespace

std::array<Tensor, 3> split_qkv_bf16(const Tensor& qkv, int64_t heads, double scale) {
  const int64_t hd = check_qkv("split_qkv_bf16", qkv, heads), B = qkv.size(0), N = qkv.size(1);
  const Tensor x = dense(qkv);
  std::array<Tensor, 3> out;
  for (Tensor& t : out) t = Tensor::empty({B, heads, N, hd}, DType::BF16, qkv.device());
  kernels::split_qkv_bf16(qkv.device(), x.data<float>(), out[0].data<bf16>(), out[1].data<bf16>(),
                          out[2].data<bf16>(), B, N, heads, hd, float(scale));
  return out;
}

Tensor attention_bf16(const Tensor& qkv, int64_t heads, double scale, DType out) {
  const char* op = "attention_bf16";
  const int64_t hd = check_qkv(op, qkv, heads), B = qkv.size(0), N = qkv.size(1), D = heads * hd;
  check_bf16_op_result(op, out);

  if (kernels::fused_attention_used(qkv.device(), N, hd)) {
    Tensor x = dense(qkv);
    // The kernel reads qkv as float4: a view at an odd offset is copied (a fresh allocation is aligned).
    if (reinterpret_cast<uintptr_t>(x.data_ptr()) % 16 != 0) x = clone(x);
    Tensor o = Tensor::empty({B, N, D}, out, qkv.device());
    if (o.numel() > 0) kernels::fused_attention_bf16(x.data<float>(), o.data_ptr(), out, B, N, heads, hd, float(scale));
    return o;
  }
  // (B, N, 3D) -> (B, N, 3, H, hd) -> (3, B, H, N, hd): timm's reshape(B, N, 3, H, hd).permute(2, 0, 3, 1, 4).
  const auto [q, k, v] = split_qkv_bf16(qkv, heads, scale);  // (B, H, N, hd) bf16, q scaled as timm does
  Tensor p = softmax_bf16(matmul_bf16(q, transpose(k, -2, -1)), -1);  // (B, H, N, N), bf16
  Tensor o = matmul_bf16(p, v, out);                                  // (B, H, N, hd)
  return reshape(transpose(o, 1, 2), {B, N, D});                      // heads side by side
}

}  // namespace sanf
