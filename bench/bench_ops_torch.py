"""PyTorch peer of bench/bench_ops.cpp: the same ops, shapes and timing method, as JSON lines.

    python3 bench/bench_ops_torch.py [cpu|cuda] [--quick]
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
import bench_common  # noqa: E402

bench_common.torch_setup()  # torch's threads (see there)

dev = "cuda" if "cuda" in sys.argv[1:] else "cpu"
quick = "--quick" in sys.argv[1:]
torch.manual_seed(0)


def report(op, shape, fn):  # the timing method is bench/bench_common.py's
    shape_s = "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
    bench_common.report(op, shape_s, fn, dev, warmup=3, max_reps=5 if quick else 50, budget_s=0.2 if quick else 1.0)


gpu = dev == "cuda"
B, N = (64, 197) if gpu else (8, 197)
D, H = (1024, 16) if gpu else (768, 12)
Dh, T = D // H, B * N
R = lambda *s: torch.randn(*s, device=dev)  # noqa: E731
x, w, b, h = R(T, D), R(4 * D, D), R(4 * D), R(T, 4 * D)
ln_w, ln_b = R(D), R(D)
scores, q, k = R(B, H, N, N), R(B, H, N, Dh), R(B, H, N, Dh)
F = torch.nn.functional

with torch.no_grad():
    report("linear", (T, D, 4 * D), lambda: F.linear(x, w, b))
    report("matmul_qk", (B, H, N, Dh), lambda: q @ k.transpose(-1, -2))
    report("gelu", (T, 4 * D), lambda: F.gelu(h))
    report("add_bias", (T, 4 * D), lambda: h + b)
    report("layer_norm", (T, D), lambda: F.layer_norm(x, (D,), ln_w, ln_b, 1e-6))
    report("softmax", (B, H, N, N), lambda: scores.softmax(-1))
    report("sum_lastdim", (T, 4 * D), lambda: h.sum(-1))
    report("transpose_copy", (B, N, H, Dh), lambda: x.reshape(B, N, H, Dh).permute(0, 2, 1, 3).contiguous())
    # bf16 attention from the qkv projection's output (bf16 under autocast) to the heads side by side.
    if gpu:
        qkv16 = R(B, N, 3 * D).to(torch.bfloat16)

        def attention():
            q_, k_, v_ = qkv16.reshape(B, N, 3, H, Dh).permute(2, 0, 3, 1, 4).unbind(0)
            return F.scaled_dot_product_attention(q_, k_, v_).transpose(1, 2).reshape(B, N, D)

        report("attention_bf16", (B, N, H, Dh), attention)

xg, wg = x.clone().requires_grad_(), w.clone().requires_grad_()
lwg, lbg = ln_w.clone().requires_grad_(), ln_b.clone().requires_grad_()


def ln_fb():
    xg.grad = lwg.grad = lbg.grad = None
    F.layer_norm(xg, (D,), lwg, lbg, 1e-6).sum().backward()


def lin_fb():
    xg.grad = wg.grad = None
    F.gelu(F.linear(xg, wg)).sum().backward()


report("layer_norm_fwd_bwd", (T, D), ln_fb)
report("linear_gelu_fwd_bwd", (T, D, 4 * D), lin_fb)
