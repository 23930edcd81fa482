#!/usr/bin/env python3
"""finalbn's training recipe in plain PyTorch: the same VGG19-BN body and fastai head (optionally
with the final BN on the logits), the same initial-weight rules, AdamW with fastai's one-cycle
schedule, dropped last batch, random flips, evaluation on the balanced test set after every epoch.

It reads the exact pixels finalbn trains on (bench/dump-pixels.ts writes them), so a run here and a
run in finalbn differ only in their random draws. About ten times faster on a CPU than tfjs, it is
the quick way to screen a recipe before confirming it with `npm run experiment`.

    /usr/bin/python3 bench/torch_twin.py --pixels /tmp/px/synth32-s1 --seeds 1,2,3 --epochs 15 --lr 1e-3

Prints one JSON line per (variant, seed, epoch) and a summary line per seed.

    /usr/bin/python3 bench/torch_twin.py --steps-from steps.safetensors

replays finalbn's first training steps on the same initial weights, batches and dropout masks
(test/torch-twin-steps.test.ts writes the file and checks that both frameworks agree).
"""
import argparse
import json
import math
import time

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

VGG19_STAGES = [[64, 64], [128, 128], [256] * 4, [512] * 4, [512] * 4]
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def scaled(count, width):
    return max(1, round(count * width))


class ConcatPool(nn.Module):
    """fastai's AdaptiveConcatPool2d as finalbn lays it out: global max, then global average."""

    def forward(self, x):
        return torch.cat([torch.amax(x, dim=(2, 3)), torch.mean(x, dim=(2, 3))], dim=1)


def build(width, final_bn, head_bias=False, head_bn_shift=1e-3, body_bn=True, head_init="fastai"):
    layers, c_in = [], 3
    for stage in VGG19_STAGES:
        for c in stage:
            c_out = scaled(c, width)
            conv = nn.Conv2d(c_in, c_out, 3, padding=1)
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(conv.bias)
            layers += [conv, nn.BatchNorm2d(c_out, eps=1e-5, momentum=0.1)] if body_bn else [conv]
            layers.append(nn.ReLU())
            c_in = c_out
        layers.append(nn.MaxPool2d(2))
    hidden = scaled(512, width)
    bn1, bn2 = nn.BatchNorm1d(2 * c_in), nn.BatchNorm1d(hidden)
    for bn in (bn1, bn2):
        nn.init.constant_(bn.bias, head_bn_shift)
    fc1, logits = nn.Linear(2 * c_in, hidden, bias=head_bias), nn.Linear(hidden, 2, bias=head_bias)
    for fc in (fc1, logits):
        if head_init == "torch":
            continue  # nn.Linear's own default (kaiming_uniform_ with a=sqrt(5)), as plain PyTorch code gets
        nn.init.kaiming_normal_(fc.weight, mode="fan_in", nonlinearity="relu")
        if fc.bias is not None:
            nn.init.zeros_(fc.bias)
    head = [ConcatPool(), bn1, nn.Dropout(0.25), fc1, nn.ReLU(), bn2, nn.Dropout(0.5), logits]
    if final_bn:
        head.append(nn.BatchNorm1d(2, eps=1e-5, momentum=0.01))  # Keras momentum 0.99
    return nn.Sequential(*layers, *head)


def one_cycle(step, max_lr, total, pct_start=0.25, div=25, div_final=1e5, moms=(0.95, 0.85, 0.95)):
    cos = lambda a, b, p: b + (a - b) / 2 * (1 + math.cos(math.pi * p))
    # Math.round as schedule.ts does: half up (Python's round() takes half to even, 46.5 -> 46)
    warm = max(1, math.floor(total * pct_start + 0.5))
    if step < warm:
        p = step / warm
        return cos(max_lr / div, max_lr, p), cos(moms[0], moms[1], p)
    p = min(1, (step - warm) / max(1, total - warm))
    return cos(max_lr, max_lr / div_final, p), cos(moms[1], moms[2], p)


def load_pixels(prefix):
    meta = json.load(open(prefix + ".json"))
    s = meta["size"]
    raw = np.fromfile(prefix + ".bin", dtype=np.uint8).reshape(-1, s, s, 3)
    x = torch.from_numpy(raw.astype(np.float32) / 255.0)
    x = (x - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    x = x.permute(0, 3, 1, 2).contiguous()
    n = len(meta["train"])
    return x[:n], torch.tensor(meta["train"]), x[n:], torch.tensor(meta["test"])


def loss_fn(out, y, kind):
    if kind == "clip":  # finalbn's original: softmax, clipped at 1e-7, then log
        p = torch.softmax(out, dim=1).clamp(1e-7, 1 - 1e-7)
        return -torch.log(p.gather(1, y[:, None])).mean()
    return F.cross_entropy(out, y)


def make_optimizer(net, lr, wd):
    """AdamW as finalbn's (src/train/adamw.ts): fastai's beta2 0.99 and eps 1e-5, decay on rank>1 tensors only."""
    decay = [p for p in net.parameters() if p.dim() > 1]
    rest = [p for p in net.parameters() if p.dim() <= 1]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": wd}, {"params": rest, "weight_decay": 0.0}],
        lr=lr, betas=(0.95, 0.99), eps=1e-5)


def train_step(net, opt, x, y, lr, beta1, loss_kind="logsoftmax"):
    """One step at this step's one-cycle lr and beta1; returns the batch's mean loss."""
    for g in opt.param_groups:
        g["lr"], g["betas"] = lr, (beta1, 0.99)
    opt.zero_grad(set_to_none=True)
    loss = loss_fn(net(x), y, loss_kind)
    loss.backward()
    opt.step()
    return loss.item()


def f1_of(pred, y):
    tp = int(((pred == 1) & (y == 1)).sum())
    fp = int(((pred == 1) & (y == 0)).sum())
    fn = int(((pred == 0) & (y == 1)).sum())
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    return (2 * prec * rec / (prec + rec) if prec + rec else 0.0), prec, rec


def body_len(net):
    return next(i for i, m in enumerate(net) if isinstance(m, ConcatPool))


def read_body(path):
    """A torchvision-layout .safetensors file (as finalbn's pretrainBody writes it) as a state_dict."""
    raw = open(path, "rb").read()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(raw[8 + n + a:8 + n + b], dtype=np.float32).copy()).reshape(t["shape"])
    return out


def pretrained_body(a):
    """A body trained on another data set (e.g. balanced leaves drawn from another seed), once."""
    import argparse as _ap, os
    if a.pretrain.endswith(".safetensors"):  # finalbn's own body: features.N.* -> N.*
        return {k.removeprefix("features."): v for k, v in read_body(a.pretrain).items()}
    key = f"/tmp/twin-body-{os.path.basename(a.pretrain)}-{a.pretrain_epochs}-{a.pretrain_lr}-{a.width}-b{a.pretrain_batch}.pt"
    if os.path.exists(key):
        return torch.load(key)
    pre = _ap.Namespace(**{**vars(a), "epochs": a.pretrain_epochs, "lr": a.pretrain_lr, "batch": a.pretrain_batch, "pretrain": None, "verbose": True})
    net = {}
    run(pre, load_pixels(a.pretrain), False, 0, keep=net)
    state = {k: v for k, v in net["net"][: body_len(net["net"])].state_dict().items()}
    torch.save(state, key)
    return state


def run(a, data, final_bn, seed, keep=None):
    xtr, ytr, xte, yte = data
    torch.manual_seed(seed)
    net = build(a.width, final_bn, head_bias=a.head_bias, head_bn_shift=a.head_bn_shift, head_init=a.head_init)
    if getattr(a, "pretrain", None):
        net[: body_len(net)].load_state_dict(pretrained_body(a))
    if keep is not None:
        keep["net"] = net
    opt = make_optimizer(net, a.lr, a.wd)
    steps = len(xtr) // a.batch
    total = steps * a.epochs
    gen = torch.Generator().manual_seed(seed)
    history = []
    for epoch in range(1, a.epochs + 1):
        net.train()
        order = torch.randperm(len(xtr), generator=gen)[: steps * a.batch]
        flips = torch.rand(len(order), generator=gen) < 0.5
        rots = torch.randint(0, 4, (len(order),), generator=gen)
        loss_sum, t0 = 0.0, time.time()
        for b in range(steps):
            idx = order[b * a.batch:(b + 1) * a.batch]
            x = xtr[idx]
            f = flips[b * a.batch:(b + 1) * a.batch]
            x = torch.where(f[:, None, None, None], x.flip(3), x)
            if a.aug == "dihedral":  # also a random quarter turn: the 8 symmetries of the square
                k = rots[b * a.batch:(b + 1) * a.batch]
                x = torch.stack([torch.rot90(xi, int(ki), dims=(1, 2)) for xi, ki in zip(x, k)])
            lr, beta1 = one_cycle((epoch - 1) * steps + b, a.lr, total, pct_start=a.pct_start)
            loss_sum += train_step(net, opt, x, ytr[idx], lr, beta1, a.loss)
        net.eval()
        with torch.no_grad():
            out = torch.cat([net(xte[i:i + 256]) for i in range(0, len(xte), 256)])
            test_loss = F.cross_entropy(out, yte).item()
            f1, prec, rec = f1_of(out.argmax(1), yte)
        rec_ = {"finalBN": final_bn, "seed": seed, "epoch": epoch, "trainLoss": loss_sum / steps,
                "testLoss": test_loss, "f1": f1, "precision": prec, "recall": rec, "seconds": time.time() - t0}
        history.append(rec_)
        if a.verbose:
            print(json.dumps(rec_), flush=True)
    return history


# ---- replaying finalbn's steps (test/torch-twin-steps.test.ts) ---------------------------------

SAFETENSORS_DTYPES = {"F32": np.float32, "I64": np.int64}


def read_safetensors(path):
    """(tensors by name as numpy arrays, metadata): the format src/models/safetensors.ts writes."""
    raw = open(path, "rb").read()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    tensors = {}
    for name, t in header.items():
        start, end = t["data_offsets"]
        tensors[name] = np.frombuffer(raw[base + start:base + end], dtype=SAFETENSORS_DTYPES[t["dtype"]]).reshape(t["shape"])
    return tensors, meta


def load_finalbn_weights(net, weights, names):
    """Copy finalbn's weights (tfjs names and layouts, model.weights' names) into build()'s net.

    finalbn's weight-carrying layers come in the same order as the net's Conv2d, BatchNorm and
    Linear modules (body convs and BNs, head/bn1, head/fc1, head/bn2, head/logits, final_bn); each
    pair is checked for kind and shape. Layouts: conv kernel HWIO -> OIHW, dense kernel [in, out]
    -> [out, in]; BN gamma, beta, moving mean and variance -> weight, bias, running mean and var.
    """
    by_layer = {}  # layer name -> {weight kind: array}, layers in the order they first appear
    for name in names:  # tfjs lists every trainable weight first, then BNs' moving mean and variance
        layer, kind = name.rsplit("/", 1)
        by_layer.setdefault(layer, {})[kind] = weights[name]
    layers = list(by_layer.items())
    modules = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d))]
    if len(layers) != len(modules):
        raise ValueError(f"finalbn has {len(layers)} layers with weights, the twin {len(modules)} "
                         f"({[l for l, _ in layers]} against {[type(m).__name__ for m in modules]})")

    def put(dst, src, what):
        src = torch.from_numpy(np.array(src))  # a writable copy
        if tuple(dst.shape) != tuple(src.shape):
            raise ValueError(f"{what}: finalbn's shape {tuple(src.shape)} does not fit the twin's {tuple(dst.shape)}")
        with torch.no_grad():
            dst.copy_(src)

    for (layer, w), m in zip(layers, modules):
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            if set(w) != {"gamma", "beta", "moving_mean", "moving_variance"}:
                raise ValueError(f"{layer} ({sorted(w)}) is not a batch norm, the twin has {type(m).__name__} there")
            put(m.weight, w["gamma"], layer)
            put(m.bias, w["beta"], layer)
            put(m.running_mean, w["moving_mean"], layer)
            put(m.running_var, w["moving_variance"], layer)
            continue
        kernel = w.get("kernel")
        rank = 4 if isinstance(m, nn.Conv2d) else 2
        if kernel is None or kernel.ndim != rank or set(w) - {"kernel", "bias"}:
            raise ValueError(f"{layer} ({sorted(w)}) does not fit the twin's {type(m).__name__}")
        put(m.weight, kernel.transpose(3, 2, 0, 1) if rank == 4 else kernel.T, layer)
        if ("bias" in w) != (m.bias is not None):
            raise ValueError(f"{layer}: bias in finalbn {'bias' in w}, in the twin {m.bias is not None}")
        if m.bias is not None:
            put(m.bias, w["bias"], layer)


class ReplayDropout(nn.Module):
    """Dropout that drops the units finalbn's SeededDropout dropped (src/models/dropout.ts
    dropoutKeep: 1 kept, 0 dropped) instead of drawing its own, and scales the kept ones by
    1/(1 - p) as torch's own dropout does."""

    def __init__(self, p):
        super().__init__()
        self.p = p
        self.keep = None

    def forward(self, x):
        if not self.training:
            return x
        if self.keep is None or tuple(self.keep.shape) != tuple(x.shape):
            raise ValueError(f"no dropout keep mask of shape {tuple(x.shape)} for this step")
        return x * (self.keep * (1 / (1 - self.p)))


def replay_steps(path, dtype=torch.float32):
    """finalbn's first steps, replayed: its initial weights, batches, dropped units and per-step lr
    and beta1 (one safetensors file); returns each step's loss, every BN's running statistics (in
    the net's order, final_bn last) and one_cycle()'s lr and beta1 over the schedule the file names.
    dtype float64 gives a reference free of float32 rounding, to tell rounding from a discrepancy."""
    t, meta = read_safetensors(path)
    steps = json.loads(meta["steps"])
    net = build(float(meta["width"]), meta["finalBN"] == "true")
    load_finalbn_weights(net, {k[2:]: v for k, v in t.items() if k.startswith("w/")}, json.loads(meta["weights"]))
    rates = json.loads(meta["dropoutRates"])
    drops = []
    for i, m in enumerate(net):  # build()'s nn.Dropout layers drop finalbn's units instead
        if isinstance(m, nn.Dropout):
            net[i] = ReplayDropout(m.p)
            drops.append(net[i])
    if [d.p for d in drops] != rates:
        raise ValueError(f"dropout rates: finalbn {rates}, the twin {[d.p for d in drops]}")
    net.to(dtype)
    opt = make_optimizer(net, steps[0]["lr"], float(meta["weightDecay"]))
    net.train()
    losses = []
    for i, s in enumerate(steps):
        x = torch.from_numpy(t[f"x/{i}"].copy()).to(dtype).permute(0, 3, 1, 2).contiguous()  # NHWC -> NCHW
        y = torch.from_numpy(t[f"y/{i}"].copy())
        for j, d in enumerate(drops):
            d.keep = torch.from_numpy(t[f"keep/{i}/{j}"].copy()).to(dtype)
        losses.append(train_step(net, opt, x, y, s["lr"], s["beta1"]))
    bns = [m for m in net.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
    schedule = json.loads(meta["schedule"])
    cycle = [one_cycle(s, schedule["maxLr"], schedule["totalSteps"]) for s in range(schedule["totalSteps"])]
    return {"torch": torch.__version__, "dtype": str(dtype).replace("torch.", ""), "losses": losses,
            "runningMean": [m.running_mean.tolist() for m in bns], "runningVar": [m.running_var.tolist() for m in bns],
            "oneCycle": cycle}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pixels", help="prefix written by bench/dump-pixels.ts")
    p.add_argument("--steps-from", nargs="+", metavar="FILE",
                   help="replay finalbn's first steps instead (files written by test/torch-twin-steps.test.ts): "
                        "one JSON line per file with the losses and the BNs' running statistics")
    p.add_argument("--double", action="store_true", help="with --steps-from: replay in float64, a reference free of float32 rounding")
    p.add_argument("--seeds", default="1")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--width", type=float, default=1 / 8)
    p.add_argument("--wd", type=float, default=1e-2)
    p.add_argument("--pct-start", type=float, default=0.25)
    p.add_argument("--loss", choices=["clip", "logsoftmax"], default="logsoftmax")
    p.add_argument("--head-bias", action="store_true", help="biases on the head's dense layers (finalbn before fastai's LinBnDrop)")
    p.add_argument("--head-bn-shift", type=float, default=1e-3)
    p.add_argument("--head-init", choices=["fastai", "torch"], default="fastai", help="the head's dense weights: fastai's kaiming_normal_ or nn.Linear's default")
    p.add_argument("--pretrain", help="pixels prefix of a data set to train the body on first")
    p.add_argument("--pretrain-epochs", type=int, default=5)
    p.add_argument("--pretrain-lr", type=float, default=1e-3)
    p.add_argument("--pretrain-batch", type=int, default=32)
    p.add_argument("--aug", choices=["flip", "dihedral"], default="flip")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--verbose", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    if a.steps_from:
        for path in a.steps_from:
            print(json.dumps(replay_steps(path, torch.float64 if a.double else torch.float32)), flush=True)
        return
    if not a.pixels:
        p.error("one of --pixels or --steps-from is required")
    data = load_pixels(a.pixels)
    for seed in [int(s) for s in a.seeds.split(",")]:
        finals = {}
        for final_bn in (False, True):
            h = run(a, data, final_bn, seed)
            finals[final_bn] = h
        w, b = finals[False][-1], finals[True][-1]
        print(json.dumps({"seed": seed, "without": round(w["f1"], 3), "with": round(b["f1"], 3),
                          "gain": round(b["f1"] - w["f1"], 3),
                          "withPR": [round(b["precision"], 2), round(b["recall"], 2)],
                          "trainLoss": [round(w["trainLoss"], 3), round(b["trainLoss"], 3)],
                          "curveWithout": [round(r["f1"], 2) for r in finals[False]],
                          "curveWith": [round(r["f1"], 2) for r in finals[True]]}), flush=True)


if __name__ == "__main__":
    main()
