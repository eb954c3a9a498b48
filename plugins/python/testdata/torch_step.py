#!/usr/bin/python3
"""Parity fixture for plugins/python/torch_parity_test.go: from the weights,
batch and settings the Go test wrote, computes with voxflow-torch's modules
one AdamW step of tune-cl or tune-mse (dropout off, BatchNorm in training
mode), and a network's layers, writing the results for the Go test to
compare with its own."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import numpy as np  # noqa: E402
import torch  # noqa: E402

from voxflow_torch import artifacts as art, nets  # noqa: E402

d = sys.argv[1]
with open(os.path.join(d, "settings.json")) as f:
    st = json.load(f)
torch.set_num_threads(1)
cfg = art.Config.load(d)
w, _ = art.read_safetensors(os.path.join(d, "init.safetensors"))
x = torch.from_numpy(np.load(os.path.join(d, "images.npy")))
y = torch.from_numpy(np.load(os.path.join(d, "voxels.npy")))
net = nets.load_state(nets.AlexNet(cfg, dropout=0.0), w, "cpu")

if st["kind"] == "features":
    out = {}
    for layer in st["layers"]:
        box, hook = nets.capture(net.eval(), layer)
        with torch.no_grad():
            net(nets.normalize(x))
        hook.remove()
        out[layer] = box["out"].numpy()
    art.write_safetensors(os.path.join(d, "torch_out.safetensors"), out)
    sys.exit(0)

if st["kind"] == "tune-cl":
    head = nets.CLHead(cfg.num_classes, y.shape[1], st["v1"], st["v2"])
    head = nets.load_state(head, w, "cpu")

    def loss_fn():
        zx, zy = head(net(nets.normalize(x)), y)
        return nets.cl_loss(zx, zy, st["tau"], st["denominator"], st["symmetric"])
else:
    head = torch.nn.Module()
    head.head = torch.nn.Linear(cfg.num_classes, y.shape[1])
    head = nets.load_state(head, w, "cpu")

    def loss_fn():
        return torch.nn.functional.mse_loss(head.head(net(nets.normalize(x))), y)

net.train()
head.train()
# The same loss in float64, as a reference for both float32 computations.
import copy  # noqa: E402
net64, head64 = copy.deepcopy(net).double(), copy.deepcopy(head).double()
with torch.no_grad():
    x64 = nets.normalize(x).double()
    if st["kind"] == "tune-cl":
        zx, zy = head64(net64(x64), y.double())
        loss64 = nets.cl_loss(zx, zy, st["tau"], st["denominator"], st["symmetric"])
    else:
        loss64 = torch.nn.functional.mse_loss(head64.head(net64(x64)), y.double())
opt = torch.optim.AdamW(list(net.parameters()) + list(head.parameters()), lr=st["lr"], eps=st["eps"], weight_decay=st["weight_decay"])
loss = loss_fn()
opt.zero_grad()
loss.backward()
opt.step()
out = nets.state_arrays(net)
out.update(nets.state_arrays(head))
art.write_safetensors(os.path.join(d, "torch_out.safetensors"), out, {"loss": repr(float(loss)), "loss64": repr(float(loss64))})
