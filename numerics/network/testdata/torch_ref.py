"""PyTorch reference for voxflow's network package tests.

Run with Debian's /usr/bin/python3 (torch 1.13). torchvision and the
safetensors module are not installed there, so AlexNet is spelled out with
torchvision's exact module layout (same state_dict keys) and safetensors is
read and written by hand.

  torch_ref.py keys   CONFIG                        -> prints state_dict keys, one per line
  torch_ref.py forward CONFIG WEIGHTS IMAGES OUT     -> OUT.npy = logits of uint8 images
  torch_ref.py write  CONFIG SEED OUT                -> OUT = safetensors of a torch-initialised net
  torch_ref.py cl     WEIGHTS A Y TAU DENOM SYM OUT  -> OUT = safetensors of loss and grads
  torch_ref.py adamw  P G LR WD OUT                  -> OUT.npy = P after len(G) AdamW steps with gradients G[k]
"""
import json
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_st(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        assert v["dtype"] == "F32", v
        lo, hi = v["data_offsets"]
        out[k] = torch.from_numpy(np.frombuffer(data[lo:hi], dtype="<f4").reshape(v["shape"]).copy())
    return out


def write_st(path, tensors):
    header, blobs, off = {}, [], 0
    for k in sorted(tensors):
        a = np.ascontiguousarray(tensors[k].detach().cpu().numpy().astype("<f4"))
        b = a.tobytes()
        header[k] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


class AlexNet(nn.Module):
    """torchvision.models.AlexNet with configurable widths."""

    def __init__(self, cfg):
        super().__init__()
        c, h = cfg["channels"], cfg["hidden"]
        self.features = nn.Sequential(
            nn.Conv2d(3, c[0], 11, stride=cfg["conv1_stride"], padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(c[0], c[1], 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(c[1], c[2], 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c[2], c[3], 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c[3], c[4], 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2))
        p = cfg["pool_size"]
        self.avgpool = nn.AdaptiveAvgPool2d((p, p))
        self.classifier = nn.Sequential(
            nn.Dropout(0.5), nn.Linear(c[4] * p * p, h[0]), nn.ReLU(inplace=True),
            nn.Dropout(0.5), nn.Linear(h[0], h[1]), nn.ReLU(inplace=True),
            nn.Linear(h[1], cfg["num_classes"]))

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def normalize(images):
    x = torch.from_numpy(images).float() / 255.0
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return (x - mean) / std


class Head(nn.Module):
    def __init__(self, n_in, n_vox, v1, v2):
        super().__init__()
        self.g_a = nn.Linear(n_in, v1)
        self.g_y = nn.Linear(n_vox, v1)
        self.g_h = nn.Sequential(nn.Linear(v1, v1), nn.BatchNorm1d(v1), nn.ReLU(),
                                 nn.Linear(v1, v1), nn.BatchNorm1d(v1), nn.ReLU(), nn.Linear(v1, v2))


def cl_loss(zx, zy, tau, denom, symmetric):
    ux, uy = F.normalize(zx, dim=1), F.normalize(zy, dim=1)
    s = uy @ ux.t() / tau

    def one(s):
        pos = torch.diagonal(s)
        if denom == "decoupled":
            eye = torch.eye(s.shape[0], dtype=torch.bool)
            s = s.masked_fill(eye, float("-inf"))
        return (torch.logsumexp(s, dim=1) - pos).mean()

    loss = one(s)
    if symmetric:
        loss = 0.5 * (loss + one(s.t()))
    return loss


def main():
    torch.set_num_threads(2)
    cmd = sys.argv[1]
    if cmd in ("keys", "forward", "write"):
        cfg = json.load(open(sys.argv[2]))
        net = AlexNet(cfg)
    if cmd == "keys":
        for k in net.state_dict():
            print(k)
    elif cmd == "forward":
        net.load_state_dict(read_st(sys.argv[3]))
        net.eval()
        with torch.no_grad():
            out = net(normalize(np.load(sys.argv[4])))
        np.save(sys.argv[5], out.numpy().astype(np.float32))
    elif cmd == "write":
        torch.manual_seed(int(sys.argv[3]))
        net = AlexNet(cfg)
        write_st(sys.argv[4], net.state_dict())
    elif cmd == "cl":
        torch.set_default_dtype(torch.float64)
        w = read_st(sys.argv[2])
        a = torch.from_numpy(np.load(sys.argv[3])).double().requires_grad_(True)
        y = torch.from_numpy(np.load(sys.argv[4])).double().requires_grad_(True)
        tau, denom, sym = float(sys.argv[5]), sys.argv[6], sys.argv[7] == "true"
        v1, n_in = w["g_a.weight"].shape
        head = Head(n_in, y.shape[1], v1, w["g_h.6.weight"].shape[0])
        head.load_state_dict({k: v.double() for k, v in w.items()}, strict=False)
        head.train()
        zx = head.g_h(head.g_a(a))
        zy = head.g_h(head.g_y(y))
        loss = cl_loss(zx, zy, tau, denom, sym)
        loss.backward()
        out = {"loss": loss.detach().reshape(1), "grad.a": a.grad, "grad.y": y.grad}
        for k, p in head.named_parameters():
            out["grad." + k] = p.grad
        for k, b in head.named_buffers():
            if "running" in k:
                out["state." + k] = b
        write_st(sys.argv[8], out)
    elif cmd == "adamw":
        p = torch.nn.Parameter(torch.from_numpy(np.load(sys.argv[2])))
        grads = np.load(sys.argv[3])
        opt = torch.optim.AdamW([p], lr=float(sys.argv[4]), weight_decay=float(sys.argv[5]))
        for g in grads:
            p.grad = torch.from_numpy(g.copy())
            opt.step()
        np.save(sys.argv[6], p.detach().numpy())
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
