#!/usr/bin/python3
"""Benchmark fixture: `steps` AdamW training steps of torchvision's AlexNet
on random 224 px batches, in PyTorch called directly (no plugin, no voxflow
code); prints the mean seconds per step. Threads: as many as the CPUs
voxflow grants the plugin in the benchmark (argv[3])."""
import sys
import time

import torch
import torchvision

batch, steps, threads = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
torch.manual_seed(0)
net = torchvision.models.alexnet(weights=None).train()
opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
x = torch.randint(0, 256, (batch, 3, 224, 224), dtype=torch.uint8)
y = torch.randint(0, 10, (batch,))
mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
start = time.time()
for _ in range(steps):
    loss = torch.nn.functional.cross_entropy(net((x.float() / 255 - mean) / std)[:, :10], y)
    opt.zero_grad()
    loss.backward()
    opt.step()
print((time.time() - start) / steps)
