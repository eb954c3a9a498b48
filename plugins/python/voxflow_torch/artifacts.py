"""voxflow's artifact formats, read and written as the Go stages do:
safetensors with torchvision names, network config.json, the data
artifact's .npy layout, and the training outputs (curve, metrics)."""

import json
import os
import struct

import numpy as np

WEIGHTS_FILE = "weights.safetensors"
CONFIG_FILE = "config.json"

_DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I64": np.int64, "I32": np.int32}


def read_safetensors(path):
    """Returns ({name: float32 ndarray}, metadata) from a safetensors file."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError("{}: {} bytes, expected a safetensors file".format(path, len(raw)))
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        raise ValueError("{}: header of {} bytes in a {}-byte file, expected a safetensors file".format(path, n, len(raw)))
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {}) or {}
    data = raw[8 + n:]
    out = {}
    for name, t in header.items():
        dt = _DTYPES.get(t["dtype"])
        if dt is None:
            raise ValueError("{}: tensor {} has dtype {}, expected one of {}".format(path, name, t["dtype"], ", ".join(_DTYPES)))
        lo, hi = t["data_offsets"]
        a = np.frombuffer(data[lo:hi], dtype=np.dtype(dt).newbyteorder("<")).reshape(t["shape"])
        out[name] = a.astype(np.float32)
    return out, meta


def write_safetensors(path, tensors, meta=None):
    """Writes {name: array} as float32 safetensors, names sorted, header
    padded to 8 bytes."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(np.asarray(tensors[name], dtype="<f4"))
        b = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    if meta:
        header["__metadata__"] = {k: str(v) for k, v in meta.items()}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


# Default widths of the two architectures (Go: network.AlexNet, network.Mini).
ARCHS = {
    "alexnet": dict(image_size=224, channels=[64, 192, 384, 256, 256], hidden=[4096, 4096], conv1_stride=4, pool_size=6),
    "alexnet-mini": dict(image_size=64, channels=[16, 48, 96, 64, 64], hidden=[256, 256], conv1_stride=2, pool_size=2),
}


class Config:
    """A network's config.json (Go: network.Config)."""

    def __init__(self, arch, image_size, num_classes, channels, hidden, conv1_stride, pool_size, extra=None):
        self.arch, self.image_size, self.num_classes = arch, int(image_size), int(num_classes)
        self.channels, self.hidden = [int(c) for c in channels], [int(h) for h in hidden]
        self.conv1_stride, self.pool_size = int(conv1_stride), int(pool_size)
        self.extra = dict(extra or {})

    @classmethod
    def for_arch(cls, arch, num_classes):
        if arch not in ARCHS:
            raise ValueError("arch {!r}: want {}".format(arch, " or ".join(repr(a) for a in ARCHS)))
        return cls(arch, num_classes=num_classes, **ARCHS[arch])

    @classmethod
    def load(cls, net_dir):
        path = os.path.join(net_dir, CONFIG_FILE)
        with open(path) as f:
            c = json.load(f)
        if not c.get("channels"):
            # Older or hand-written configs: the arch's defaults.
            base = cls.for_arch(c["arch"], c.get("num_classes", 1000))
            base.extra = c.get("extra") or {}
            if c.get("image_size"):
                base.image_size = int(c["image_size"])
            return base
        return cls(c["arch"], c["image_size"], c["num_classes"], c["channels"], c["hidden"], c["conv1_stride"],
                   c["pool_size"], c.get("extra"))

    def to_json(self):
        d = {"arch": self.arch, "image_size": self.image_size, "num_classes": self.num_classes,
             "channels": self.channels, "hidden": self.hidden, "conv1_stride": self.conv1_stride,
             "pool_size": self.pool_size}
        if self.extra:
            d["extra"] = self.extra
        return d

    def param_names(self):
        names = []
        for i in (0, 3, 6, 8, 10):
            names += ["features.{}.weight".format(i), "features.{}.bias".format(i)]
        for i in (1, 4, 6):
            names += ["classifier.{}.weight".format(i), "classifier.{}.bias".format(i)]
        return names


def write_json(path, v):
    with open(path, "w") as f:
        json.dump(v, f, indent=2)
        f.write("\n")


def save_net(net_dir, cfg, weights):
    """net/weights.safetensors (the network's own parameters only) and
    net/config.json, as Go's artifact.SaveNet writes them."""
    os.makedirs(net_dir, exist_ok=True)
    missing = [n for n in cfg.param_names() if n not in weights]
    if missing:
        raise ValueError("save net {}: missing {}".format(net_dir, ", ".join(missing)))
    write_json(os.path.join(net_dir, CONFIG_FILE), cfg.to_json())
    write_safetensors(os.path.join(net_dir, WEIGHTS_FILE), {n: weights[n] for n in cfg.param_names()},
                      {"arch": cfg.arch, "format": "pt"})


def load_net(net_dir):
    """(Config, {name: array}) of a network artifact; extra tensors dropped."""
    cfg = Config.load(net_dir)
    w, _ = read_safetensors(os.path.join(net_dir, WEIGHTS_FILE))
    missing = [n for n in cfg.param_names() if n not in w]
    if missing:
        raise ValueError("{}: weights do not fit the network: missing {}".format(os.path.join(net_dir, WEIGHTS_FILE), ", ".join(missing[:6])))
    return cfg, {n: w[n] for n in cfg.param_names()}


def read_manifest(dataset):
    with open(os.path.join(dataset, "manifest.json")) as f:
        return json.load(f)


def resolve_subject(dataset, subject):
    m = read_manifest(dataset)
    if m.get("kind") != "nsd":
        raise ValueError("data artifact {}: kind {!r}, want 'nsd' (fMRI responses)".format(dataset, m.get("kind")))
    subjects = m.get("subjects") or []
    if subject:
        if subject not in subjects:
            raise ValueError("data artifact {}: no subject {!r} (have {})".format(dataset, subject, subjects))
        return subject
    if len(subjects) != 1:
        raise ValueError("data artifact {} has subjects {}: set param subject (or foreach over subject)".format(dataset, subjects))
    return subjects[0]


def images_path(dataset, subject, split):
    return os.path.join(dataset, subject, split, "images.npy")


def resize_images(imgs, to):
    """Bilinear resize of uint8 N x 3 x S x S to N x 3 x to x to with
    half-pixel centres, rounding as Go's network.ResizeImages."""
    n, c, s, _ = imgs.shape
    if s == to:
        return imgs
    scale = s / to
    x = np.maximum((np.arange(to) + 0.5) * scale - 0.5, 0)
    i0 = x.astype(np.int64)
    i1 = np.minimum(i0 + 1, s - 1)
    w1 = x - i0
    src = imgs.astype(np.float64)
    # Along x first, then y, in Go's order of operations, so that rounding
    # at .5 agrees.
    top, bot = src[:, :, i0, :], src[:, :, i1, :]
    top = top[:, :, :, i0] * (1 - w1) + top[:, :, :, i1] * w1
    bot = bot[:, :, :, i0] * (1 - w1) + bot[:, :, :, i1] * w1
    out = top * (1 - w1)[None, None, :, None] + bot * w1[None, None, :, None]
    return np.minimum(255, np.floor(out + 0.5)).astype(np.uint8)


def load_roi_data(dataset, subject, roi, size):
    """Train and val images (resized to size) and one ROI's responses."""
    subject = resolve_subject(dataset, subject)
    if not roi:
        raise ValueError("param roi is empty: set it (or foreach over roi)")
    out = {"subject": subject, "roi": roi}
    for split in ("train", "val"):
        img = np.load(images_path(dataset, subject, split))
        vox = np.load(os.path.join(dataset, subject, split, "roi", roi + ".npy")).astype(np.float32)
        if vox.shape[0] != img.shape[0]:
            raise ValueError("{}: {} response rows for {} images".format(os.path.join(dataset, subject, split, "roi", roi + ".npy"), vox.shape[0], img.shape[0]))
        out[split] = (resize_images(img, size), vox)
    out["voxels"] = out["train"][1].shape[1]
    return out


def load_class_split(dataset, split, size):
    img = np.load(images_path(dataset, "", split))
    lab = np.load(os.path.join(dataset, split, "labels.npy")).astype(np.int64)
    if len(lab) != img.shape[0]:
        raise ValueError("{}: {} labels for {} images".format(os.path.join(dataset, split, "labels.npy"), len(lab), img.shape[0]))
    return resize_images(img, size), lab


def write_curve_png(path, title, curve):
    """A small train/validation loss plot, drawn with PIL (curve.png)."""
    from PIL import Image, ImageDraw
    w, h, m = 600, 400, 50
    im = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(im)
    d.text((m, 10), title, fill="black")
    d.rectangle([m, m, w - m, h - m], outline="black")
    pts = [(e["epoch"], e["train_loss"]) for e in curve] + [(e["epoch"], e["val_loss"]) for e in curve]
    finite = [p for p in pts if np.isfinite(p[1])]
    if finite:
        x0, x1 = min(p[0] for p in finite), max(p[0] for p in finite)
        y0, y1 = min(p[1] for p in finite), max(p[1] for p in finite)
        sx = (w - 2 * m) / max(x1 - x0, 1)
        sy = (h - 2 * m) / max(y1 - y0, 1e-12)
        for key, col in (("train_loss", (31, 119, 180)), ("val_loss", (214, 39, 40))):
            xy = [(m + (e["epoch"] - x0) * sx, h - m - (e[key] - y0) * sy) for e in curve if np.isfinite(e[key])]
            if len(xy) > 1:
                d.line(xy, fill=col, width=2)
            for x, y in xy:
                d.ellipse([x - 3, y - 3, x + 3, y + 3], fill=col)
        d.text((w - m - 120, m + 5), "train", fill=(31, 119, 180))
        d.text((w - m - 120, m + 20), "validation", fill=(214, 39, 40))
        d.text((m, h - m + 5), "epoch {}..{}".format(x0, x1), fill="black")
        d.text((5, m), "{:.3g}".format(y1), fill="black")
        d.text((5, h - m - 10), "{:.3g}".format(y0), fill="black")
    im.save(path)


def write_run_outputs(out_dir, net_cfg, result, resolved, title, head=None, metrics=None):
    """What a training stage writes (Go: network.WriteRunOutputs)."""
    net_dir = os.path.join(out_dir, "net")
    save_net(net_dir, net_cfg, result["best"])
    if head:
        write_safetensors(os.path.join(net_dir, "head.safetensors"), head)
    curve = result["curve"]
    write_json(os.path.join(out_dir, "curve.json"), {"epochs": curve, "best_epoch": result["best_epoch"],
                                                     "best_val_loss": result["best_val"], "stopped": result["stopped"]})
    write_curve_png(os.path.join(out_dir, "curve.png"), title, curve)
    write_json(os.path.join(out_dir, "config.json"), resolved)
    m = {"best_val_loss": result["best_val"], "best_epoch": result["best_epoch"], "epochs_run": len(curve),
         "images_per_s": result["images_per_s"]}
    if curve:
        m["final_train_loss"] = curve[-1]["train_loss"]
        m["first_train_loss"] = curve[0]["train_loss"]
    m.update(metrics or {})
    write_json(os.path.join(out_dir, "metrics.json"), m)
