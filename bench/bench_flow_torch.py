"""PyTorch peer of bench/bench_flow.cpp: the same SANF flow training step and scoring pass, as JSON lines.

    python3 bench/bench_flow_torch.py [cpu|cuda] [--quick] [--dim 768|1024]

The flow is the flow of docs/METHOD.md §3 written with torch.nn modules (the same layers, shapes and Adam settings as the C++
flow; its numerics are checked separately by tests/fixtures/make_flow_fixture.py). "flow_train_step" and
"flow_score" evaluate the class attention as flows/caff.cpp does (Wk, Wv moved off the patch tokens), so the
two implementations do the same arithmetic; the "_direct_attention" lines project all N+1 tokens by Wk and
Wv as the formula is written, which is how a PyTorch user would usually write it.
"""
import math
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(__file__))
import bench_common  # noqa: E402

bench_common.torch_setup()  # torch's threads (see there)

dev = "cuda" if "cuda" in sys.argv[1:] else "cpu"
quick = "--quick" in sys.argv[1:]
DIM = int(sys.argv[sys.argv.index("--dim") + 1]) if "--dim" in sys.argv[1:] else 768  # D and H, as sanf bench flow
torch.manual_seed(0)
DIRECT = False  # see the module docstring


def report(op, shape, fn):  # the timing method is bench/bench_common.py's
    bench_common.report(op, shape, fn, dev, warmup=1 if quick else 2, max_reps=3 if quick else 20,
                        budget_s=1.0 if quick else 10.0)


class CAFF(nn.Module):
    def __init__(self, d, H, heads):
        super().__init__()
        self.heads = heads
        self.mlp = nn.Sequential(nn.Linear(d, H), nn.ReLU(), nn.Linear(H, H), nn.ReLU(), nn.Linear(H, H), nn.ReLU())
        self.q, self.k, self.v, self.proj = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, H)
        self.gamma = nn.Parameter(torch.ones(H))
        self.fuse = nn.Linear(2 * H, 2 * d)
        nn.init.zeros_(self.fuse.weight)
        nn.init.zeros_(self.fuse.bias)

    def forward(self, h, Q):
        B, d = h.shape
        dh = d // self.heads
        q = self.q(h).view(B, self.heads, dh)
        if DIRECT:  # the formula as written: keys and values of all N+1 tokens of m = [h; Q]
            m = torch.cat([h[:, None], Q], 1)
            M = m.shape[1]
            k = self.k(m).view(B, M, self.heads, dh)
            v = self.v(m).view(B, M, self.heads, dh)
            A = ((q[:, None] * k).sum(-1) / math.sqrt(dh)).softmax(1)  # (B, M, heads)
            av = (A[..., None] * v).sum(1).reshape(B, d)
        else:  # flows/caff.cpp's evaluation: Wk and Wv moved off the tokens (r_h = Wk_h^T q_h, mbar_h)
            m = torch.cat([h[:, None], Q], 1)
            r = torch.einsum("bhe,hed->bhd", q, self.k.weight.view(self.heads, dh, d))
            scores = torch.einsum("bmd,bhd->bmh", m, r) + (q * self.k.bias.view(self.heads, dh)).sum(-1)[:, None]
            A = (scores / math.sqrt(dh)).softmax(1)  # (B, M, heads)
            mbar = torch.einsum("bmh,bmd->bhd", A, m)
            av = torch.einsum("bhd,hed->bhe", mbar, self.v.weight.view(self.heads, dh, d)).reshape(B, d) + self.v.bias
        o = self.proj(av) * self.gamma
        s, t = self.fuse(torch.cat([self.mlp(h), o], 1)).chunk(2, 1)
        return s, t


class Flow(nn.Module):
    def __init__(self, D, H, K, heads, alpha=3.0):
        super().__init__()
        self.alpha, self.d = alpha, D // 2
        self.caffs = nn.ModuleList([nn.ModuleList([CAFF(D // 2, H, heads), CAFF(D // 2, H, heads)]) for _ in range(K)])
        for k in range(K):
            self.register_buffer(f"perm{k}", torch.randperm(D))

    def clamp(self, s):
        return (2 * self.alpha / math.pi) * torch.atan(s / self.alpha)

    def forward(self, y, P):
        d, logdet = self.d, 0
        for k, (c1, c2) in enumerate(self.caffs):
            perm = getattr(self, f"perm{k}")
            y, P = y[:, perm], P[:, :, perm]
            a, b = y[:, :d], y[:, d:]
            s1, t1 = c1(a, P[:, :, :d])
            b = b * torch.exp(self.clamp(s1)) + t1
            s2, t2 = c2(b, P[:, :, d:])
            a = a * torch.exp(self.clamp(s2)) + t2
            y = torch.cat([a, b], 1)
            logdet = logdet + self.clamp(s1).sum(1) + self.clamp(s2).sum(1)
        return y, logdet


B, D, N, H, K = 32, DIM, 196, DIM, 4
flow = Flow(D, H, K, heads=4).to(dev)
opt = torch.optim.Adam(flow.parameters(), lr=5e-5, betas=(0.8, 0.8), eps=1e-4, weight_decay=1e-5)
y, P = torch.randn(B, D, device=dev), torch.randn(B, N, D, device=dev)
shape = f"B 32, D {D}, N 196, H {H}, K 4"


def train_step():
    opt.zero_grad()
    z, logdet = flow(y, P)
    ((0.5 * (z ** 2).sum(1) - logdet).mean() / D).backward()
    opt.step()


def score():
    with torch.no_grad():
        z, logdet = flow(y, P)
        return 0.5 * (z ** 2).sum(1) - logdet


DIRECT = False
report("flow_train_step", shape, train_step)
report("flow_score", shape, score)
DIRECT = True
report("flow_train_step_direct_attention", shape, train_step)
report("flow_score_direct_attention", shape, score)
