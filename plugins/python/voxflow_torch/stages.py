"""voxflow-torch's stage kinds: pretrain, tune-cl, tune-mse and features,
with the Go kinds' params, inputs and outputs, on PyTorch (CUDA when
device: cuda, or auto finds one)."""

import hashlib
import json
import os
import sys

import numpy as np
import torch
import torchvision

from voxflow_plugin import Param, Port, Stage

from . import artifacts as art
from . import nets
from .fit import device_for, fit


def _implementation():
    """What the plugin's results depend on besides its inputs: the source of
    this package and of the SDK, and the torch, torchvision and CUDA
    versions. It goes into every kind's version string, which voxflow puts
    in the cache key, so another environment never reuses a result
    silently."""
    h = hashlib.blake2b(digest_size=8)
    here = os.path.dirname(os.path.abspath(__file__))
    for d in (here, os.path.join(here, "..", "voxflow_plugin")):
        for f in sorted(os.listdir(d)):
            if f.endswith(".py"):
                with open(os.path.join(d, f), "rb") as fh:
                    h.update(f.encode() + b"\0" + fh.read())
    return "torch{}+tv{}+cuda{}+src{}".format(torch.__version__, torchvision.__version__, torch.version.cuda or "none", h.hexdigest())


IMPL = _implementation()


def train_params(epochs, batch, lr):
    """The Go kinds' training params (network.TrainParams), plus the
    PyTorch knobs."""
    return [
        Param("epochs", "int", default=epochs, min=0, doc="maximum training epochs (0 = export init)"),
        Param("batch_size", "int", default=batch, min=2, doc="training batch size, clamped to the training set size"),
        Param("lr", "float", default=float(lr), min=0, doc="peak AdamW learning rate"),
        Param("weight_decay", "float", default=0.0, min=0, doc="decoupled (AdamW) weight decay"),
        Param("warmup_epochs", "float", default=1.0, min=0, doc="linear warm-up length; cosine decay follows"),
        Param("patience", "int", default=5, min=0, doc="early stopping: epochs without a better validation loss (0 = off)"),
        Param("seed", "int", default=0, doc="seed for init, shuffling and dropout (torch's and numpy's generators: not the Go stages' draws)"),
        Param("dropout", "float", default=0.5, min=0, max=0.95, doc="classifier dropout while training (torchvision: 0.5)"),
        Param("backend", "string", default="go", enum=["go", "xla"], doc="accepted for specs written for the Go kinds; voxflow-torch runs on PyTorch (see device)"),
    ] + torch_params()


def _tune_params(roi_doc, own, tail):
    """The params of a fine-tuning kind, in the Go kind's order: subject,
    roi, the kind's own, the training params, backbone_lr_scale, then tail."""
    return [
        Param("subject", "string", default="", doc="subject to tune on (\"\" = the artifact's only subject)"),
        Param("roi", "string", default="", doc=roi_doc),
    ] + own + train_params(20, 1024, 1e-4) + [
        Param("backbone_lr_scale", "float", default=1.0, min=0, doc="learning-rate multiplier for the pretrained network's parameters (the fresh head gets lr)"),
    ] + tail


def torch_params():
    return [
        Param("device", "string", default="auto", enum=["auto", "cpu", "cuda"], doc="auto: CUDA when torch sees a GPU, else CPU"),
        Param("amp", "bool", default=False, doc="mixed precision (torch.autocast + GradScaler) on CUDA; ignored on CPU"),
        Param("channels_last", "bool", default=False, doc="channels-last memory format for the convolutions (faster on recent GPUs)"),
    ]


def _train_cfg(p):
    return {k: p[k] for k in ("epochs", "batch_size", "lr", "weight_decay", "warmup_epochs", "patience", "seed", "amp")}


def _reporter(req):
    return lambda phase, done, total, unit, msg: req.progress(phase, done, total, unit, message=msg)


def _threads(req):
    if req.resources.cpus > 0:
        torch.set_num_threads(req.resources.cpus)


def _training_outputs(net_doc):
    """The output ports every training kind writes (Go: network.TuneOutputs)."""
    return [Port("net", doc=net_doc),
            Port("curve.json", doc="train/validation loss and images/s per epoch"),
            Port("curve.png", doc="training curve plot"),
            Port("config.json", doc="resolved configuration")]


def _batcher(train, val, device, channels_last):
    """batch(split, idx, rng) for fit: images normalised on the device and
    their targets (responses or labels), from the train or val arrays."""
    def batch(split, idx, rng):
        x, y = train if split == "train" else val
        return _images(x[idx], device, channels_last), torch.from_numpy(y[idx]).to(device)
    return batch


def _to_device(model, device, channels_last):
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def _images(x, device, channels_last):
    t = nets.normalize(torch.from_numpy(x).to(device))
    return t.contiguous(memory_format=torch.channels_last) if channels_last else t


class _Tune(Stage):
    """What tune-cl and tune-mse share: loading the starting network and one
    (subject, ROI)'s responses, training, and writing the outputs."""

    inputs = [Port("data", doc="NSD-like data artifact"),
              Port("init", doc="network artifact to start from (weights.safetensors + config.json)")]
    outputs = _training_outputs("tuned network (weights.safetensors, config.json, head.safetensors)")

    def run(self, req):
        p = req.params
        _threads(req)
        device = device_for(p["device"])
        if len(req.inputs.get("data", [])) != 1 or len(req.inputs.get("init", [])) != 1:
            raise ValueError("{}: want one data and one init artifact".format(self.kind))
        cfg, init = art.load_net(req.input("init"))
        d = art.load_roi_data(req.input("data"), p["subject"], p["roi"], cfg.image_size)
        torch.manual_seed(int(p["seed"]))
        net = nets.load_state(nets.AlexNet(cfg, p["dropout"]), init, device)
        net = _to_device(net, device, p["channels_last"])
        head, loss_of, extra, resolved_extra = self.make_head(req, cfg, d)
        head = head.to(device)
        (xt, yt), (xv, yv) = d["train"], d["val"]
        batch = _batcher(d["train"], d["val"], device, p["channels_last"])

        def loss_fn(b, train):
            return loss_of(net(b[0]), b[1])

        req.log.write("{}: subject {} roi {}: {} voxels, {} train / {} val images, {} {}px on {} ({}){}\n".format(
            req.instance, d["subject"], d["roi"], d["voxels"], len(yt), len(yv), cfg.arch, cfg.image_size, device, IMPL, extra))
        res = fit({"net": net, "head": head}, loss_fn, batch, len(yt), len(yv), _train_cfg(p),
                  {"net": p["backbone_lr_scale"]}, _reporter(req), req.log, req.cancelled, device)
        best_net, best_head = res["best"]["net"], res["best"]["head"]
        res["best"] = {k: v.float().numpy() for k, v in best_net.items()}
        out = art.Config(**{**cfg.to_json(), "extra": {"tuned_by": self.kind, "subject": d["subject"], "roi": d["roi"],
                                                        "init": req.inputs["init"][0].stage, "implementation": IMPL}})
        resolved = dict(p)
        resolved.update({"subject": d["subject"], "roi": d["roi"], "net": cfg.to_json(), "voxels": d["voxels"],
                         "n_train": len(yt), "n_val": len(yv), "batch_size": min(p["batch_size"], len(yt))})
        resolved.update(resolved_extra)
        head_arrays = {k: v.float().numpy() for k, v in best_head.items() if not k.endswith("num_batches_tracked")}
        art.write_run_outputs(req.out_dir, out, res, resolved, "{} {} {}".format(self.kind, d["subject"], d["roi"]),
                              head=head_arrays)


class TuneCL(_Tune):
    kind = "tune-cl"
    version = "2+" + IMPL
    doc = "fine-tune AlexNet to one ROI with the contrastive loss of the poster (Eq. 1), on PyTorch"
    params = _tune_params("ROI whose responses the network is tuned to (required; usually bound by foreach)", [
        Param("temperature", "float", default=0.1, min=1e-6, doc="tau in Eq. 1"),
        Param("v1", "int", default=512, min=1, doc="shared latent width of g_A and g_Y (clamped to the ROI's voxels)"),
        Param("v2", "int", default=128, min=1, doc="projection width of g_H (clamped to v1)"),
        Param("denominator", "string", default="decoupled", enum=["decoupled", "simclr"], doc="decoupled: sum over j != i (Eq. 1); simclr: keep the positive"),
        Param("symmetric", "bool", default=False, doc="average the y-anchored loss with the x-anchored one"),
    ], [])

    def make_head(self, req, cfg, d):
        p = req.params
        v1, v2 = p["v1"], p["v2"]
        if v1 > d["voxels"]:
            req.log.write("warning: v1 {} > {} voxels in {}; using v1 = {} (the poster requires v1 <= v_r)\n".format(v1, d["voxels"], d["roi"], d["voxels"]))
            v1 = d["voxels"]
        if v2 > v1:
            req.log.write("warning: v2 {} > v1 {}; using v2 = {}\n".format(v2, v1, v1))
            v2 = v1
        head = nets.CLHead(cfg.num_classes, d["voxels"], v1, v2)
        tau, denom, sym = p["temperature"], p["denominator"], p["symmetric"]

        def loss_of(a, y):
            zx, zy = head(a.float(), y)
            return nets.cl_loss(zx.float(), zy.float(), tau, denom, sym)

        return head, loss_of, ", head {}->{}".format(v1, v2), {"v1": v1, "v2": v2}


class TuneMSE(_Tune):
    kind = "tune-mse"
    version = "2+" + IMPL
    doc = "fine-tune AlexNet + a linear read-out to one ROI's responses by MSE, on PyTorch"
    params = _tune_params("ROI whose responses the network regresses onto (required; usually bound by foreach)", [], [
        Param("head_init_scale", "float", default=0.0, min=0, doc="scale of the read-out's initial weights relative to torch's Linear init (0 = start from predicting 0)"),
    ])

    def make_head(self, req, cfg, d):
        head = torch.nn.Module()
        head.head = torch.nn.Linear(cfg.num_classes, d["voxels"])
        with torch.no_grad():
            head.head.weight.mul_(req.params["head_init_scale"])
            head.head.bias.mul_(req.params["head_init_scale"])

        def loss_of(a, y):
            return torch.nn.functional.mse_loss(head.head(a.float()), y)

        return head, loss_of, "", {}


class Features(Stage):
    kind = "features"
    version = "1+" + IMPL
    doc = "a network's layer outputs on every split of a data artifact, on PyTorch"
    params = [
        Param("subject", "string", default="", doc="NSD subject (\"\" = all subjects)"),
        Param("layer", "string", default="output", enum=nets.layers(), doc="layer to read (torchvision module names; output = classifier.6)"),
        Param("batch_size", "int", default=64, min=1, doc="images per forward pass"),
        Param("backend", "string", default="go", enum=["go", "xla"], doc="accepted for specs written for the Go kinds; voxflow-torch runs on PyTorch (see device)"),
    ] + torch_params()
    inputs = [Port("data", doc="NSD-like or classification data artifact"), Port("net", doc="network artifact")]
    outputs = [Port("features", doc="features directory (features.json, <subject>/<split>.npy or <split>.npy)")]

    def run(self, req):
        p = req.params
        _threads(req)
        device = device_for(p["device"])
        dataset, net_art = req.input("data"), req.inputs["net"][0]
        cfg, w = art.load_net(net_art.path)
        m = art.read_manifest(dataset)
        net = _to_device(nets.load_state(nets.AlexNet(cfg), w, device), device, p["channels_last"]).eval()
        box, hook = nets.capture(net, p["layer"])
        out = os.path.join(req.out_dir, "features")
        info = {"net_stage": net_art.stage, "layer": p["layer"], "kind": m["kind"], "arch": cfg.arch, "image_size": cfg.image_size}
        if net_art.labels:
            info["net_labels"] = net_art.labels
        dim = [0]

        def extract(images_npy, out_npy, phase):
            imgs = np.load(images_npy, mmap_mode="r")
            n = imgs.shape[0]
            feats = None
            bs = p["batch_size"]
            with torch.no_grad():
                for lo in range(0, n, bs):
                    req.check_cancelled()
                    x = art.resize_images(np.asarray(imgs[lo:lo + bs]), cfg.image_size)
                    with torch.autocast(device.type, enabled=p["amp"] and device.type == "cuda"):
                        net(_images(x, device, p["channels_last"]))
                    f = box["out"].float().cpu().numpy()
                    if feats is None:
                        dim[0] = f.shape[1]
                        feats = np.lib.format.open_memmap(out_npy + ".tmp", mode="w+", dtype="<f4", shape=(n, f.shape[1]))
                    feats[lo:lo + len(f)] = f
                    req.progress(phase, lo + len(f), n, "img")
            os.makedirs(os.path.dirname(out_npy), exist_ok=True)
            if feats is None:
                np.save(out_npy, np.zeros((0, dim[0]), "<f4"))
                return
            feats.flush()
            del feats
            os.replace(out_npy + ".tmp", out_npy)

        if m["kind"] == "nsd":
            subjects = m["subjects"]
            if p["subject"]:
                subjects = [art.resolve_subject(dataset, p["subject"])]
            info["subjects"] = subjects
            for s in subjects:
                os.makedirs(os.path.join(out, s), exist_ok=True)
                for sp in ("train", "val", "test"):
                    extract(art.images_path(dataset, s, sp), os.path.join(out, s, sp + ".npy"), s + "/" + sp)
        else:
            os.makedirs(out, exist_ok=True)
            info["classes"] = m["classes"]
            for sp in ("train", "val", "test"):
                extract(art.images_path(dataset, "", sp), os.path.join(out, sp + ".npy"), sp)
                lab = np.load(os.path.join(dataset, sp, "labels.npy")).astype("<i4")
                np.save(os.path.join(out, sp + "_labels.npy"), lab)
            art.write_json(os.path.join(out, "classes.json"), m["classes"])
        hook.remove()
        info["dim"] = dim[0]
        req.log.write("{}: {} layer {} ({}-d) of net {!r} on {} data, {} ({})\n".format(
            req.instance, cfg.arch, p["layer"], dim[0], net_art.stage, m["kind"], device, IMPL))
        art.write_json(os.path.join(out, "features.json"), info)


class Pretrain(Stage):
    kind = "pretrain"
    version = "2+" + IMPL
    doc = "train AlexNet/alexnet-mini by classification, or import a torchvision weights file, on PyTorch"
    params = [
        Param("arch", "string", default="alexnet-mini", enum=["alexnet-mini", "alexnet"], doc="network architecture"),
        Param("image_size", "int", default=0, min=0, doc="input size (0 = the arch's: 64 mini, 224 alexnet)"),
        Param("num_classes", "int", default=1000, min=1, doc="output units (1000 as AlexNet, so downstream features are 1000-d)"),
        Param("init", "path", default="random", not_paths=["random"], doc="\"random\" or the path of a safetensors weights file with torchvision names (its content is part of the key)"),
        Param("loss_classes", "string", default="data", enum=["data", "all"], doc="data: the softmax covers only the data's classes; all: every output"),
        Param("init_scheme", "string", default="kaiming", enum=["torch", "kaiming"], doc="random init: kaiming or torch (torchvision AlexNet's default)"),
    ] + train_params(10, 64, 1e-3)
    inputs = [Port("data", doc="classification data artifact (not needed to import weights with epochs 0)", optional=True)]
    outputs = _training_outputs("network (weights.safetensors, config.json)")

    def run(self, req):
        p = req.params
        _threads(req)
        device = device_for(p["device"])
        cfg = art.Config.for_arch(p["arch"], p["num_classes"])
        if p["image_size"] > 0:
            cfg.image_size = p["image_size"]
        init = p["init"]
        if init == "random":
            w = nets.init_network(cfg, p["seed"], p["init_scheme"])
        else:
            w = self.import_weights(init, cfg, req.log)
        cfg.extra = {"init": init, "pretrained_by": self.kind, "implementation": IMPL}
        resolved = dict(p)
        resolved["net"] = cfg.to_json()
        if p["epochs"] == 0:
            req.log.write("epochs 0: exporting {} as the network\n".format(init))
            art.save_net(os.path.join(req.out_dir, "net"), cfg, w)
            art.write_json(os.path.join(req.out_dir, "config.json"), resolved)
            return
        if len(req.inputs.get("data", [])) != 1:
            raise ValueError("pretrain: training (epochs {}) needs one classification data artifact on input data".format(p["epochs"]))
        dataset = req.input("data")
        m = art.read_manifest(dataset)
        if m["kind"] != "classification":
            raise ValueError("input data {}: kind {!r}, want 'classification'".format(dataset, m["kind"]))
        if len(m["classes"]) > cfg.num_classes:
            raise ValueError("param num_classes {} < {} classes in {}".format(cfg.num_classes, len(m["classes"]), dataset))
        xt, yt = art.load_class_split(dataset, "train", cfg.image_size)
        xv, yv = art.load_class_split(dataset, "val", cfg.image_size)
        k = len(m["classes"]) if p["loss_classes"] == "data" else cfg.num_classes
        torch.manual_seed(int(p["seed"]))
        net = _to_device(nets.load_state(nets.AlexNet(cfg, p["dropout"]), w, device), device, p["channels_last"])
        batch = _batcher((xt, yt), (xv, yv), device, p["channels_last"])

        def loss_fn(b, train):
            return torch.nn.functional.cross_entropy(net(b[0]).float()[:, :k], b[1])

        req.log.write("{}: {} {}px on {} ({} classes): {} train / {} val images, {} ({})\n".format(
            req.instance, cfg.arch, cfg.image_size, m["source"], len(m["classes"]), len(yt), len(yv), device, IMPL))
        res = fit({"net": net}, loss_fn, batch, len(yt), len(yv), _train_cfg(p), {}, _reporter(req), req.log, req.cancelled, device)
        res["best"] = {kk: v.float().numpy() for kk, v in res["best"]["net"].items()}
        nets.load_state(net, res["best"], device).eval()
        correct = 0
        with torch.no_grad():
            for lo in range(0, len(yv), p["batch_size"]):
                out = net(_images(xv[lo:lo + p["batch_size"]], device, p["channels_last"])).float()[:, :k]
                correct += int((out.argmax(1).cpu().numpy() == yv[lo:lo + p["batch_size"]]).sum())
        acc = correct / len(yv)
        req.log.write("best epoch {}: val loss {:.4f}, val accuracy {:.3f}\n".format(res["best_epoch"], res["best_val"], acc))
        cfg.extra["source"] = m["source"]
        resolved.update({"n_train": len(yt), "n_val": len(yv), "classes": m["classes"]})
        art.write_run_outputs(req.out_dir, cfg, res, resolved, "pretrain {} on {}".format(cfg.arch, m["source"]),
                              metrics={"val_accuracy": acc})

    @staticmethod
    def import_weights(path, cfg, log):
        w, _ = art.read_safetensors(path)
        if w and all(k.startswith("module.") for k in w):
            log.write("{}: stripped the prefix \"module.\" from all {} tensor names (a state dict saved from nn.DataParallel)\n".format(path, len(w)))
            w = {k[len("module."):]: v for k, v in w.items()}
        if "classifier.6.weight" in w and w["classifier.6.weight"].ndim == 2:
            cfg.num_classes = w["classifier.6.weight"].shape[0]
        missing = [n for n in cfg.param_names() if n not in w]
        if missing:
            unexpected = sorted(set(w) - set(cfg.param_names()))
            raise ValueError("{} (arch {}, image_size {}): weights do not fit the network: missing {}; unexpected names in the file: {}".format(
                path, cfg.arch, cfg.image_size, ", ".join(missing[:6]), ", ".join(unexpected[:8]) or "none"))
        return {n: w[n] for n in cfg.param_names()}


def all_stages():
    return [Pretrain(), TuneCL(), TuneMSE(), Features()]


def main():
    from voxflow_plugin import serve
    serve(*all_stages())


if __name__ == "__main__":
    sys.exit(main())
