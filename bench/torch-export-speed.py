"""Speed of the exported PyTorch optimizers next to torch's own (issue 21 item 4).

    python3 bench/torch-export-speed.py [--device cpu|cuda] [--params N] [--threads T]
                                        [--reps R] [--export-dir DIR] [--out FILE.json]

Times one optimizer step (ms, median of R steps, all optimizers round-robin after warm-up) on N
float32 parameters split into tensors shaped like a small network's (four weight matrices and
their biases), for:
  - torchForeach / torchForLoop: torch.optim.Adam(foreach=True / False);
  - adamForeach / adamPerTensor: `nos export --rule adam --format pytorch`, foreach on / off;
  - noiseForeach / noisePerTensor: the same for the rule `adam + noise` (noise drawn on the
    parameter's device).
Goals (issue 21): exported Adam <= 1.3x torch.optim.Adam(foreach=True); adam + noise <= 2x
exported Adam. The exported files come from DIR (adam.py, adamnoise.py); without --export-dir
they are exported here with `node bin/nos.js export` (Node and a built checkout). CPU runs use
--threads threads (default 1, as the kernel benchmarks); on CUDA each step is synchronized.
Writes (and prints) one JSON document.
"""
import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time

import torch

ap = argparse.ArgumentParser()
ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
ap.add_argument("--params", type=int, default=1_000_000)
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--reps", type=int, default=21)
ap.add_argument("--export-dir")
ap.add_argument("--out")
args = ap.parse_args()

if args.device == "cuda" and not torch.cuda.is_available():
    sys.exit("torch-export-speed: --device cuda, but torch sees no CUDA device")
if args.device == "cpu":
    torch.set_num_threads(args.threads)
device = torch.device(args.device)

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
export_dir = args.export_dir
if export_dir is None:
    export_dir = tempfile.mkdtemp(prefix="nos-torch-speed-")
    for name, rule in (("adam", "adam"), ("adamnoise", "rule adamnoise = adam + noise")):
        subprocess.run(
            ["node", os.path.join(root, "bin", "nos.js"), "export", "--rule", rule, "--format", "pytorch",
             "--out", os.path.join(export_dir, name + ".py")],
            check=True,
            stderr=subprocess.DEVNULL,
        )


def load(name):
    spec = importlib.util.spec_from_file_location("nos_" + name, os.path.join(export_dir, name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return [getattr(mod, k) for k in dir(mod) if k.endswith("Optimizer") and k != "Optimizer"][0]


Adam = load("adam")
AdamNoise = load("adamnoise")

# Four weight matrices and their biases, about `params` numbers in all.
n = args.params
widths = [max(1, int(n * f)) for f in (0.55, 0.3, 0.1)]
shapes = [(w // 100, 100) for w in widths] + [(max(1, n - sum(w // 100 * 100 for w in widths) - 400),)]
shapes += [(100,), (100,), (100,), (100,)]
count = sum(torch.Size(s).numel() for s in shapes)


def make(factory):
    gen = torch.Generator().manual_seed(0)
    ps = [torch.nn.Parameter(torch.randn(s, generator=gen).to(device)) for s in shapes]
    for p in ps:
        p.grad = (torch.randn(p.shape, generator=gen) * 0.01).to(device)
    return factory(ps)


opts = {
    "torchForeach": make(lambda ps: torch.optim.Adam(ps, lr=1e-3, foreach=True)),
    "torchForLoop": make(lambda ps: torch.optim.Adam(ps, lr=1e-3, foreach=False)),
    "adamForeach": make(lambda ps: Adam(ps, lr=1e-3, foreach=True)),
    "adamPerTensor": make(lambda ps: Adam(ps, lr=1e-3, foreach=False)),
    "noiseForeach": make(lambda ps: AdamNoise(ps, lr=1e-3, foreach=True)),
    "noisePerTensor": make(lambda ps: AdamNoise(ps, lr=1e-3, foreach=False)),
}


def sync():
    if device.type == "cuda":
        torch.cuda.synchronize()


times = {k: [] for k in opts}
warm = 3
for i in range(warm + args.reps):
    for k, opt in opts.items():
        sync()
        t0 = time.perf_counter()
        opt.step()
        sync()
        if i >= warm:
            times[k].append(time.perf_counter() - t0)
ms = {k: sorted(v)[len(v) // 2] * 1e3 for k, v in times.items()}
out = {
    "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
    "torch": torch.__version__,
    "params": count,
    "tensors": len(shapes),
    "threads": torch.get_num_threads() if device.type == "cpu" else None,
    "reps": args.reps,
    "msPerStep": ms,
    "nsPerParam": {k: v * 1e6 / count for k, v in ms.items()},
    "ratios": {
        "adamVsTorchForeach": ms["adamForeach"] / ms["torchForeach"],
        "adamPerTensorVsTorchForLoop": ms["adamPerTensor"] / ms["torchForLoop"],
        "noiseVsNoiseless": ms["noiseForeach"] / ms["adamForeach"],
    },
    "goals": {"adamVsTorchForeach": 1.3, "noiseVsNoiseless": 2.0},
}
text = json.dumps(out, indent=2)
if args.out:
    with open(args.out, "w") as f:
        f.write(text + "\n")
print(text)
