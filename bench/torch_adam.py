"""PyTorch peer for `nos bench --only kernels`: ns per parameter of one torch.optim.Adam step
on N float32 parameters (default 1,000,000) in one tensor, on CPU with 1 thread, with
foreach=False (the per-tensor loop) and foreach=True (the multi-tensor kernels), run
round-robin (side by side) after warm-up steps; medians.
Prints JSON: {"forLoop": ns, "foreach": ns, "torch": version}."""
import json
import sys
import time

import torch

torch.set_num_threads(1)


def adam(n, foreach):
    p = torch.nn.Parameter(torch.full((n,), 0.5, dtype=torch.float32))
    p.grad = torch.sin(torch.arange(n, dtype=torch.float32)) * 0.01
    return torch.optim.Adam([p], lr=1e-3, foreach=foreach)


n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
reps = int(sys.argv[2]) if len(sys.argv) > 2 else 21
opts = {"forLoop": adam(n, False), "foreach": adam(n, True)}
times = {k: [] for k in opts}
with torch.no_grad():
    for i in range(3 + reps):
        for k, opt in opts.items():
            t0 = time.perf_counter()
            opt.step()
            if i >= 3:
                times[k].append(time.perf_counter() - t0)
out = {k: sorted(ts)[len(ts) // 2] * 1e9 / n for k, ts in times.items()}
out["torch"] = torch.__version__
print(json.dumps(out))
