#!/usr/bin/env python3
"""finalbn's training recipe in plain PyTorch: the same VGG19-BN body and fastai head (optionally
with the final BN on the logits), the same initial-weight rules, AdamW with fastai's one-cycle
schedule, dropped last batch, random flips, evaluation on the balanced test set after every epoch.

It reads the exact pixels finalbn trains on (bench/dump-pixels.ts writes them), so a run here and a
run in finalbn differ only in their random draws. About ten times faster on a CPU than tfjs, it is
the quick way to screen a recipe before confirming it with `npm run experiment`.

    /usr/bin/python3 bench/torch_twin.py --pixels /tmp/px/synth32-s1 --seeds 1,2,3 --epochs 15 --lr 1e-3

Prints one JSON line per (variant, seed, epoch) and a summary line per seed.
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


def build(width, final_bn, head_bias=False, head_bn_shift=1e-3, body_bn=True):
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


def f1_of(pred, y):
    tp = int(((pred == 1) & (y == 1)).sum())
    fp = int(((pred == 1) & (y == 0)).sum())
    fn = int(((pred == 0) & (y == 1)).sum())
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    return (2 * prec * rec / (prec + rec) if prec + rec else 0.0), prec, rec


def run(a, data, final_bn, seed):
    xtr, ytr, xte, yte = data
    torch.manual_seed(seed)
    net = build(a.width, final_bn, head_bias=a.head_bias, head_bn_shift=a.head_bn_shift)
    decay = [p for p in net.parameters() if p.dim() > 1]
    rest = [p for p in net.parameters() if p.dim() <= 1]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": a.wd}, {"params": rest, "weight_decay": 0.0}],
        lr=a.lr, betas=(0.95, 0.99), eps=1e-5)
    steps = len(xtr) // a.batch
    total = steps * a.epochs
    gen = torch.Generator().manual_seed(seed)
    history = []
    for epoch in range(1, a.epochs + 1):
        net.train()
        order = torch.randperm(len(xtr), generator=gen)[: steps * a.batch]
        flips = torch.rand(len(order), generator=gen) < 0.5
        loss_sum, t0 = 0.0, time.time()
        for b in range(steps):
            idx = order[b * a.batch:(b + 1) * a.batch]
            x = xtr[idx]
            f = flips[b * a.batch:(b + 1) * a.batch]
            x = torch.where(f[:, None, None, None], x.flip(3), x)
            lr, beta1 = one_cycle((epoch - 1) * steps + b, a.lr, total, pct_start=a.pct_start)
            for g in opt.param_groups:
                g["lr"], g["betas"] = lr, (beta1, 0.99)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(x), ytr[idx], a.loss)
            loss.backward()
            opt.step()
            loss_sum += loss.item()
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


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pixels", required=True, help="prefix written by bench/dump-pixels.ts")
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
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--verbose", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
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
