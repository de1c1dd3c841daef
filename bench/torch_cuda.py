"""PyTorch on the GPU, beside nos's GPU figures (bench/gpu-machine.sh runs it; CUDA only):
- the device's copy bandwidth (a 1 GiB tensor copy, read + write);
- torch.optim.Adam at 1M, 10M and 100M parameters, fused and foreach: ns/param and GB/s at 28
  bytes per parameter (the WGSL Adam's traffic: w, g, m, v read; w, m, v written);
- a training step (forward, backward, Adam) of nos's MLP (batch 64) and ConvNet (batch 32).
Times from CUDA events over many repetitions after warm-up; medians of 5 such runs.
Prints JSON."""
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_step import ConvNet, mlp  # noqa: E402  (the same models as the CPU peer)

if not torch.cuda.is_available():
    print(json.dumps({"error": "CUDA is not available", "torch": torch.__version__}))
    sys.exit(0)
dev = torch.device("cuda")
torch.manual_seed(0)


def timed(fn, reps, runs=5):
    """ms per call of fn: `reps` calls between two CUDA events, median of `runs`."""
    for _ in range(3):
        fn()
    out = []
    for _ in range(runs):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(reps):
            fn()
        b.record()
        torch.cuda.synchronize()
        out.append(a.elapsed_time(b) / reps)
    out.sort()
    return out[len(out) // 2]


src = torch.empty(2**28, dtype=torch.float32, device=dev)
dst = torch.empty_like(src)
copy_ms = timed(lambda: dst.copy_(src), 20)
copy_gbps = 2 * src.numel() * 4 / (copy_ms * 1e6)
del src, dst

adam = []
for n in (1_000_000, 10_000_000, 100_000_000):
    row = {"params": n}
    for kind in ("fused", "foreach"):
        p = torch.nn.Parameter(torch.full((n,), 0.5, device=dev))
        p.grad = torch.sin(torch.arange(n, device=dev, dtype=torch.float32)) * 0.01
        opt = torch.optim.Adam([p], lr=1e-3, **{kind: True})
        ms = timed(opt.step, 20 if n >= 10_000_000 else 100)
        row[f"{kind}NsPerParam"] = ms * 1e6 / n
        row[f"{kind}GBps"] = 28 * n / (ms * 1e6)
        del p, opt
    adam.append(row)
    torch.cuda.empty_cache()


def step_ms(model, x, y):
    model = model.to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()

    return timed(step, 50)


print(
    json.dumps(
        {
            "torch": torch.__version__,
            "device": torch.cuda.get_device_name(0),
            "copyGBps": copy_gbps,
            "adam": adam,
            "mlpMsPerStep": step_ms(mlp(), torch.rand(64, 784, device=dev), torch.randint(0, 10, (64,), device=dev)),
            "convnetMsPerStep": step_ms(
                ConvNet(), torch.rand(32, 1, 28, 28, device=dev), torch.randint(0, 10, (32,), device=dev)
            ),
        }
    )
)
