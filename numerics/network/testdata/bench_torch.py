"""PyTorch 1.13 CPU peer for voxflow's network benchmarks.

  bench_torch.py CONFIG BATCH STEPS PHASE

PHASE "train" trains (cross-entropy, AdamW, dropout as torchvision) the
network CONFIG describes on one batch of random images; "forward" runs it in
eval mode without gradients. Either way on 2 threads, one untimed warm-up
step and then STEPS timed ones, and prints {"img_per_s": ..., "peak_rss_mb":
...} as JSON. Each phase runs in a process of its own, as voxflow's side of
the benchmark does, so that its peak RSS is its own.
"""
import json
import sys
import time

import torch

sys.dont_write_bytecode = True  # keep testdata/ free of __pycache__
sys.path.insert(0, __file__.rsplit("/", 1)[0])
from torch_ref import AlexNet  # noqa: E402


def peak_rss_mb():
    # VmHWM, not ru_maxrss: the latter is inherited from the Go parent
    # across fork+exec and would report the parent's peak.
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 1024
    return 0.0


def main():
    torch.set_num_threads(2)
    cfg = json.load(open(sys.argv[1]))
    batch, steps, phase = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    s = cfg["image_size"]
    torch.manual_seed(0)
    net = AlexNet(cfg)
    x = torch.randn(batch, 3, s, s)
    if phase == "train":
        opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
        y = torch.randint(0, cfg["num_classes"], (batch,))
        net.train()

        def step():
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(x), y)
            loss.backward()
            opt.step()
    elif phase == "forward":
        net.eval()
        torch.set_grad_enabled(False)

        def step():
            net(x)
    else:
        sys.exit("phase %r: want train or forward" % phase)
    step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    ips = batch * steps / (time.perf_counter() - t)
    print(json.dumps({"img_per_s": ips, "peak_rss_mb": peak_rss_mb()}))


if __name__ == "__main__":
    main()
