"""PyTorch peer for `nos bench --only training`: ms per training step (forward, backward, Adam)
of the same models and batches as nos's child tasks, on CPU with 1 thread.
Prints JSON: {"mlp": ms, "convnet": ms, "torch": version}."""
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 32, 3, padding=1)
        self.c2 = nn.Conv2d(32, 32, 3, padding=1)
        self.fc = nn.Linear(7 * 7 * 32, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        x = F.max_pool2d(F.relu(self.c2(x)), 2)
        return self.fc(x.flatten(1))


def bench(model, x, y, steps=40, warm=5):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    times = []
    for i in range(warm + steps):
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        if i >= warm:
            times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return times[len(times) // 2]


def mlp():
    return nn.Sequential(nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))


if __name__ == "__main__":
    torch.set_num_threads(1)
    torch.manual_seed(0)
    out = {
        "mlp": bench(mlp(), torch.rand(64, 784), torch.randint(0, 10, (64,))),
        "convnet": bench(ConvNet(), torch.rand(32, 1, 28, 28), torch.randint(0, 10, (32,)), steps=20),
        "torch": torch.__version__,
    }
    print(json.dumps(out))
