"""The networks, heads and losses of voxflow's Go stages, in PyTorch, with
the same parameter names (torchvision's AlexNet layout; the CL head as a
module with g_a, g_y, g_h; tune-mse's read-out as head)."""

import math

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def layers():
    """Layer names a features stage can read (Go: network.Layers)."""
    return ["features.{}".format(i) for i in range(13)] + ["avgpool"] + ["classifier.{}".format(i) for i in range(7)] + ["output"]


class AlexNet(nn.Module):
    """torchvision's AlexNet topology with a config's widths, so an
    alexnet config is torchvision.models.AlexNet, state_dict names and all,
    and alexnet-mini keeps those names."""

    def __init__(self, cfg, dropout=0.5):
        super().__init__()
        c, h, p = cfg.channels, cfg.hidden, cfg.pool_size
        self.features = nn.Sequential(
            nn.Conv2d(3, c[0], 11, stride=cfg.conv1_stride, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(c[0], c[1], 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(c[1], c[2], 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c[2], c[3], 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c[3], c[4], 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2))
        self.avgpool = nn.AdaptiveAvgPool2d((p, p))
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(c[4] * p * p, h[0]), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(h[0], h[1]), nn.ReLU(inplace=True), nn.Linear(h[1], cfg.num_classes))

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def normalize(images):
    """uint8 N x 3 x H x W -> float32 ImageNet-normalised input."""
    x = images.float().div_(255.0)
    mean = torch.tensor(MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - mean) / std


class CLHead(nn.Module):
    """The poster's head: g_a (In -> v1), g_y (voxels -> v1), then g_h, an
    MLP v1 -> v1 -> v1 -> v2 with BatchNorm1d + ReLU after the first two
    layers, shared by both sides (Go: network.Head)."""

    def __init__(self, n_in, voxels, v1, v2):
        super().__init__()
        self.g_a = nn.Linear(n_in, v1)
        self.g_y = nn.Linear(voxels, v1)
        self.g_h = nn.Sequential(nn.Linear(v1, v1), nn.BatchNorm1d(v1), nn.ReLU(),
                                 nn.Linear(v1, v1), nn.BatchNorm1d(v1), nn.ReLU(), nn.Linear(v1, v2))

    def forward(self, a, y):
        # x side first, then y: BatchNorm's running statistics are updated
        # in that order, as in the Go stage.
        return self.g_h(self.g_a(a)), self.g_h(self.g_y(y))


def cl_loss(zx, zy, tau, denominator, symmetric):
    """The poster's Eq. 1 averaged over the batch (Go: network.CLLoss):
    s_ij = cos(z_i^y, z_j^x)/tau, l_i = -s_ii + log sum_j exp(s_ij), over
    j != i (decoupled) or all j (simclr); symmetric averages it with the
    x-anchored loss."""
    ux, uy = F.normalize(zx, dim=1), F.normalize(zy, dim=1)
    s = uy @ ux.t() / tau
    eye = torch.eye(s.shape[0], dtype=torch.bool, device=s.device)

    def one(s):
        pos = s.diagonal()
        logits = s.masked_fill(eye, -1e30) if denominator == "decoupled" else s
        return (torch.logsumexp(logits, dim=1) - pos).mean()

    loss = one(s)
    if symmetric:
        loss = 0.5 * (loss + one(s.t()))
    return loss


def capture(model, layer):
    """Registers a hook keeping layer's output (flattened) in the returned
    dict under "out"; layer names as Go's network.Layers."""
    if layer == "output":
        layer = "classifier.6"
    module = dict(model.named_modules())[layer]
    box = {}

    def hook(_m, _inp, out):
        # ReLUs run in place: copy before the next module changes it.
        box["out"] = torch.flatten(out, 1).detach().clone()

    return box, module.register_forward_hook(hook)


def load_state(module, weights, device):
    """Loads {name: ndarray} into module (strict on its own names)."""
    own = module.state_dict()
    state = {}
    for k, v in own.items():
        if k.endswith("num_batches_tracked"):
            state[k] = v
            continue
        if k not in weights:
            raise ValueError("weights lack {}".format(k))
        t = torch.from_numpy(np.ascontiguousarray(weights[k]))
        if tuple(t.shape) != tuple(v.shape):
            raise ValueError("{} has shape {}, want {}".format(k, tuple(t.shape), tuple(v.shape)))
        state[k] = t
    module.load_state_dict(state)
    return module.to(device)


def state_arrays(module, prefix=""):
    """{name: float32 ndarray} of a module's parameters and BatchNorm
    running statistics (num_batches_tracked, which Go does not keep, is
    left out)."""
    return {prefix + k: v.detach().float().cpu().numpy().copy() for k, v in module.state_dict().items()
            if not k.endswith("num_batches_tracked")}


def init_network(cfg, seed, scheme):
    """Random weights: torch's default Conv2d/Linear init ("torch") or He
    init for convs with normal(0, 0.01) linears and zero biases
    ("kaiming"), as the Go pretrain stage offers."""
    g = torch.Generator().manual_seed(int(seed))
    net = AlexNet(cfg)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if scheme == "kaiming":
                if name.endswith(".bias"):
                    p.zero_()
                elif p.dim() == 4:
                    p.normal_(0, math.sqrt(2.0 / (p.shape[0] * p.shape[2] * p.shape[3])), generator=g)
                else:
                    p.normal_(0, 0.01, generator=g)
            else:
                fan_in = p.shape[1] * (p.shape[2] * p.shape[3] if p.dim() == 4 else 1) if p.dim() > 1 else None
                if fan_in is None:
                    w = dict(net.named_parameters())[name[:-len("bias")] + "weight"]
                    fan_in = w.shape[1] * (w.shape[2] * w.shape[3] if w.dim() == 4 else 1)
                b = 1 / math.sqrt(fan_in)
                p.uniform_(-b, b, generator=g)
    return state_arrays(net)
