"""The training loop of voxflow's Go stages (network.Fit) in PyTorch:
AdamW with a per-parameter learning-rate scale, linear warm-up then cosine
decay per step, fixed-size shuffled batches (the last partial batch of an
epoch dropped), validation loss after each epoch in eval mode, the best
checkpoint kept, early stopping on patience."""

import math
import time

import numpy as np
import torch


def lr_at(base, step, warm, total):
    """The learning rate at step (0-based) of total (Go: network.LRAt)."""
    if warm > 0 and step < warm:
        return base * (step + 1) / warm
    if total <= warm:
        return base
    prog = (step - warm) / (total - warm)
    return base * 0.5 * (1 + math.cos(math.pi * prog))


class OOMError(RuntimeError):
    """A GPU ran out of memory; the message names the batch size."""


def device_for(name):
    """torch.device for the device param: auto (CUDA when available), cpu
    or cuda (an error naming the reason when there is none)."""
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            built = torch.version.cuda or "none (a CPU-only build)"
            raise RuntimeError("param device: cuda requested, but torch {} sees no CUDA device (CUDA in this build: {}); "
                               "use device: auto or cpu, or run on a GPU node with a CUDA build of PyTorch".format(torch.__version__, built))
        return torch.device("cuda")
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def fit(modules, loss_fn, batch_fn, ntrain, nval, cfg, scales, report, log, cancelled, device):
    """Trains modules (a dict name -> nn.Module whose parameters are named
    "<name-prefix><param>") and returns a result dict like Go's FitResult.

    loss_fn(batch, train) -> loss tensor; batch_fn(split, idx, rng) -> the
    tensors loss_fn takes. scales maps a module name to its learning-rate
    multiplier. cfg holds epochs, batch_size, lr, weight_decay,
    warmup_epochs, patience, seed, amp.
    """
    bs = cfg["batch_size"]
    if bs > ntrain:
        log.write("warning: batch_size {} > {} training examples; using {}\n".format(bs, ntrain, ntrain))
        bs = ntrain
    if bs < 2 or nval < 1:
        raise ValueError("fit: need batch_size >= 2 and validation examples, have batch {}, {} train, {} val".format(bs, ntrain, nval))
    groups = []
    for name, m in modules.items():
        params = [p for p in m.parameters() if p.requires_grad]
        if params:
            groups.append({"params": params, "scale": scales.get(name, 1.0), "lr": cfg["lr"]})
    opt = torch.optim.AdamW(groups, lr=cfg["lr"], betas=(0.9, 0.999), eps=1e-8, weight_decay=cfg["weight_decay"])
    amp = bool(cfg.get("amp")) and device.type == "cuda"
    scaler = torch.cuda.amp.GradScaler(enabled=amp)
    rng = np.random.default_rng(int(cfg["seed"]))

    def snapshot():
        return {name: {k: v.detach().cpu().clone() for k, v in m.state_dict().items()} for name, m in modules.items()}

    def set_mode(train):
        for m in modules.values():
            m.train(train)

    def val_loss():
        set_mode(False)
        total, count = 0.0, 0
        with torch.no_grad():
            for lo in range(0, nval, bs):
                hi = min(lo + bs, nval)
                if hi - lo < 2 and lo > 0:
                    break  # one example: no negatives, no batch statistics
                with torch.autocast(device.type, enabled=amp):
                    loss = loss_fn(batch_fn("val", np.arange(lo, hi), rng), False)
                total += float(loss) * (hi - lo)
                count += hi - lo
        return total / count

    res = {"best": None, "best_epoch": 0, "best_val": math.inf, "curve": [], "images_per_s": 0.0, "stopped": "epochs"}
    if cfg["epochs"] == 0:
        res["best_val"] = val_loss()
        res["best"] = snapshot()
        return res
    steps = ntrain // bs
    total = steps * cfg["epochs"]
    warm = int(round(cfg["warmup_epochs"] * steps))
    t = 0
    since_best = 0
    train_secs, train_imgs = 0.0, 0
    for epoch in range(1, cfg["epochs"] + 1):
        start = time.time()
        perm = rng.permutation(ntrain)
        loss_sum, lr = 0.0, cfg["lr"]
        set_mode(True)
        for s in range(steps):
            if cancelled.is_set():
                raise RuntimeError("cancelled")
            lr = lr_at(cfg["lr"], t, warm, total)
            t += 1
            for g in opt.param_groups:
                g["lr"] = lr * g["scale"]
            idx = perm[s * bs:(s + 1) * bs]
            try:
                with torch.autocast(device.type, enabled=amp):
                    loss = loss_fn(batch_fn("train", idx, rng), True)
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            except RuntimeError as e:
                if "out of memory" in str(e):
                    raise OOMError("{} ran out of memory at batch_size {}: lower batch_size (e.g. {}), or set amp: true "
                                   "on a GPU ({})".format(device, bs, max(2, bs // 2), str(e).splitlines()[0])) from e
                raise
            lv = float(loss)
            if not math.isfinite(lv):
                raise ValueError("fit: training loss is {} at epoch {} step {} (lower lr?)".format(lv, epoch, s + 1))
            loss_sum += lv
            done = (s + 1) * bs
            el = max(time.time() - start, 1e-9)
            report("epoch {}/{}".format(epoch, cfg["epochs"]), done, steps * bs, "img",
                   "step {}/{} loss {:.4f} {:.1f} img/s".format(s + 1, steps, lv, done / el))
        secs = time.time() - start
        train_secs += secs
        train_imgs += steps * bs
        v = val_loss()
        st = {"epoch": epoch, "train_loss": loss_sum / steps, "val_loss": v, "lr": lr,
              "images_per_s": steps * bs / secs, "seconds": secs}
        res["curve"].append(st)
        log.write("epoch {}/{} train_loss {:.5f} val_loss {:.5f} lr {:.3g} {:.1f} img/s\n".format(
            epoch, cfg["epochs"], st["train_loss"], v, lr, st["images_per_s"]))
        if v < res["best_val"]:
            res["best_val"], res["best_epoch"], since_best = v, epoch, 0
            res["best"] = snapshot()
        else:
            since_best += 1
            if cfg["patience"] > 0 and since_best >= cfg["patience"]:
                log.write("early stop after epoch {}: no better validation loss for {} epochs (best {:.5f} at epoch {})\n".format(
                    epoch, since_best, res["best_val"], res["best_epoch"]))
                res["stopped"] = "patience"
                break
    if res["best"] is None:
        res["best"] = snapshot()
    if train_secs > 0:
        res["images_per_s"] = train_imgs / train_secs
    return res
