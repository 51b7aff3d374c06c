"""PyTorch peer of `sanf bench vit`: ViT forward throughput on random weights, same JSON fields.

    python3 bench/bench_vit_torch.py [--arch vit-base] [--batch 8] [--reps 3] [--device cpu|cuda]
                                     [--precision f32|tf32|bf16] [--model auto|timm|torchvision]
                                     [--configs PRECISION:BATCH[,PRECISION:BATCH...]]
--precision as `sanf bench vit --precision`: tf32 allows cuBLAS's TF32 (CUDA only), bf16 runs the forward
under torch.autocast(bfloat16) (matrix multiplies in bf16, as sanf's bf16 path).
--configs runs several (precision, batch) pairs in this one process, in the order given, e.g.
`--configs bf16:64,bf16:256,tf32:64`: the model is built once, and each pair prints its JSON line as soon
as it is measured (a pair that fails prints its error on stderr and the next one runs). Without it, the
single pair --precision / --batch runs.
--model: timm's VisionTransformer (`forward_features`: all tokens after the final norm, as sanf returns;
timm >= 0.9 computes attention with F.scaled_dot_product_attention, i.e. PyTorch's fused attention
kernels on a GPU), or torchvision's (its encoder; timm is not packaged by Debian). auto (the default) takes
timm when it can be imported. At patch 16 / 224 both are the same computation as sanf's ViT: pre-norm
blocks, exact GELU, LayerNorm eps 1e-6. The JSON line names the model.
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
from torchvision.models.vision_transformer import VisionTransformer

ARCHS = {"vit-tiny": (192, 12, 3), "vit-small": (384, 12, 6), "vit-base": (768, 12, 12), "vit-large": (1024, 24, 16)}
PRECISIONS = ["f32", "tf32", "bf16"]
p = argparse.ArgumentParser()
p.add_argument("--arch", default="vit-base", choices=ARCHS)
p.add_argument("--batch", type=int, default=8)
p.add_argument("--image-size", type=int, default=224)
p.add_argument("--reps", type=int, default=3)
p.add_argument("--device", default="cpu")
p.add_argument("--precision", default="f32", choices=PRECISIONS)
p.add_argument("--configs", default=None, help="PRECISION:BATCH pairs, comma-separated, run in this order")
p.add_argument("--model", default="auto", choices=["auto", "timm", "torchvision"])
p.add_argument("--threads", type=int, default=int(os.environ.get("TORCH_THREADS") or 0),
               help="CPU threads (default: $TORCH_THREADS, else all cores; Debian's torch starts with 1)")
a = p.parse_args()


def parse_configs(text):
    configs = []
    for item in text.split(","):
        prec, sep, batch = item.strip().partition(":")
        if not sep or prec not in PRECISIONS or not batch.isdigit() or int(batch) < 1:
            p.error(f"--configs: '{item}' is not PRECISION:BATCH (PRECISION one of {', '.join(PRECISIONS)})")
        configs.append((prec, int(batch)))
    return configs


configs = parse_configs(a.configs) if a.configs else [(a.precision, a.batch)]
if any(prec == "tf32" for prec, _ in configs) and a.device != "cuda":
    p.error("--precision tf32 needs --device cuda")
torch.set_num_threads(a.threads or os.cpu_count())
dim, depth, heads = ARCHS[a.arch]
if a.model == "auto":
    try:
        import timm  # noqa: F401
        a.model = "timm"
    except ImportError:
        a.model = "torchvision"
if a.model == "timm":
    import timm
    model = timm.create_model(f"vit_{a.arch[4:]}_patch16_224", pretrained=False, num_classes=0,
                              img_size=a.image_size).eval().to(a.device)
    forward = model.forward_features  # all tokens after the final norm
else:
    model = VisionTransformer(a.image_size, 16, depth, heads, dim, 4 * dim).eval().to(a.device)

    def forward(x):  # all tokens after the final norm (no classifier head), as sanf returns
        tokens = model._process_input(x)
        return model.encoder(torch.cat([model.class_token.expand(x.shape[0], -1, -1), tokens], dim=1))


def measure(precision, batch):
    """Median seconds of `reps` forwards of one batch (after one warm-up), in the given precision."""
    if a.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
        torch.backends.cudnn.allow_tf32 = precision == "tf32"
    x = torch.randn(batch, 3, a.image_size, a.image_size, device=a.device)

    def once():
        with torch.no_grad(), torch.autocast(a.device, dtype=torch.bfloat16, enabled=precision == "bf16"):
            forward(x)
        if a.device == "cuda":
            torch.cuda.synchronize()

    once()
    times = []
    for _ in range(max(a.reps, 1)):
        t0 = time.perf_counter()
        once()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


failed = 0
for precision, batch in configs:
    try:
        s = measure(precision, batch)
    except Exception as e:  # e.g. out of memory at a large batch: report it, go on with the next pair
        failed += 1
        print(f"bench_vit_torch: {precision}:{batch} failed: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        if a.device == "cuda":
            torch.cuda.empty_cache()
        continue
    print(json.dumps({"impl": "torch", "model": a.model, "torch": torch.__version__, "what": "vit_forward",
                      "arch": a.arch, "image_size": a.image_size, "batch": batch, "device": a.device,
                      "precision": precision, "threads": torch.get_num_threads(), "seconds": round(s, 4),
                      "img_per_s": round(batch / s, 3)}), flush=True)
sys.exit(1 if failed else 0)
