"""PyTorch 1.13 CPU peer for voxflow's network benchmarks.

  bench_torch.py CONFIG BATCH STEPS

Trains (cross-entropy, AdamW, dropout as torchvision) and runs forward
passes of the network CONFIG describes on random images, 2 threads, and
prints {"train": img/s, "forward": img/s, "peak_rss_mb": MB} as JSON. The
first step of each phase is a warm-up and not timed.
"""
import json
import sys
import time

import torch

sys.dont_write_bytecode = True  # keep testdata/ free of __pycache__
sys.path.insert(0, __file__.rsplit("/", 1)[0])
from torch_ref import AlexNet  # noqa: E402


def main():
    torch.set_num_threads(2)
    cfg = json.load(open(sys.argv[1]))
    batch, steps = int(sys.argv[2]), int(sys.argv[3])
    s = cfg["image_size"]
    torch.manual_seed(0)
    net = AlexNet(cfg)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    x = torch.randn(batch, 3, s, s)
    y = torch.randint(0, cfg["num_classes"], (batch,))
    net.train()

    def step():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()

    step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    train = batch * steps / (time.perf_counter() - t)
    net.eval()
    with torch.no_grad():
        net(x)
        t = time.perf_counter()
        for _ in range(steps):
            net(x)
        fwd = batch * steps / (time.perf_counter() - t)
    # VmHWM, not ru_maxrss: the latter is inherited from the Go parent
    # across fork+exec and would report the parent's peak.
    rss = 0.0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                rss = float(line.split()[1]) / 1024
    print(json.dumps({"train": train, "forward": fwd, "peak_rss_mb": rss}))


if __name__ == "__main__":
    main()
