#!/usr/bin/env python3
"""The same VGG19 training steps as bench/train-step.ts, in PyTorch, for `npm run bench -- --with-torch`.

VGG19 (or VGG19-BN) body, fastai head, with and without the final BN on the logits; AdamW; random
images. Prints one JSON object: torch version, device, and images/s per variant and thread count
(--threads 1,2: torch.set_num_threads, the same counts as the tfjs side). Plain PyTorch, no
torchvision, so that any PyTorch install (Debian's python3-torch included) runs it.
"""
import argparse
import json
import statistics
import time

import torch
from torch import nn

VGG19_STAGES = [[64, 64], [128, 128], [256] * 4, [512] * 4, [512] * 4]


def scaled(count, width):
    return max(1, round(count * width))


def vgg19_body(batch_norm, width):
    layers, in_c = [], 3
    for stage in VGG19_STAGES:
        for c in stage:
            out_c = scaled(c, width)
            layers.append(nn.Conv2d(in_c, out_c, 3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_c))
            layers.append(nn.ReLU(inplace=True))
            in_c = out_c
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers), in_c


class ConcatPool(nn.Module):
    """fastai's AdaptiveConcatPool2d: global max and average pools side by side."""

    def forward(self, x):
        return torch.cat([torch.amax(x, dim=(2, 3)), torch.mean(x, dim=(2, 3))], dim=1)


def head_bn(features):
    """fastai's BatchNorm(): shift 1e-3, scale 1."""
    bn = nn.BatchNorm1d(features)
    nn.init.constant_(bn.bias, 1e-3)
    return bn


def model(arch, final_bn, width):
    body, channels = vgg19_body(arch == "vgg19_bn", width)
    hidden = scaled(512, width)
    # fastai's create_head: each Linear follows a BN and so has no bias (LinBnDrop).
    head = [
        ConcatPool(),
        head_bn(2 * channels),
        nn.Dropout(0.25),
        nn.Linear(2 * channels, hidden, bias=False),
        nn.ReLU(inplace=True),
        head_bn(hidden),
        nn.Dropout(0.5),
        nn.Linear(hidden, 2, bias=False),
    ]
    if final_bn:
        head.append(nn.BatchNorm1d(2))
    return nn.Sequential(body, *head)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--arch", default="vgg19", choices=["vgg19", "vgg19_bn"])
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--min-ms", type=float, default=1000)
    p.add_argument("--device", default="auto", help="cuda, cpu or auto")
    p.add_argument("--threads", default="", help="comma-separated CPU thread counts (default: torch's own)")
    a = p.parse_args()
    thread_counts = [int(t) for t in a.threads.split(",") if t.strip()] or [torch.get_num_threads()]

    device = torch.device("cuda" if a.device == "auto" and torch.cuda.is_available() else ("cpu" if a.device == "auto" else a.device))
    if device.type == "cuda":
        thread_counts = thread_counts[:1]  # CPU threads do not apply
        torch.backends.cudnn.benchmark = True
        name = torch.cuda.get_device_name(device)
    else:
        name = "cpu"
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    # Each variant on each thread count is one contender; like the tfjs side (bench/timing.ts), they
    # take turns round by round, so a change in the machine's load hits all of them alike.
    contenders = []
    for threads, final_bn in [(t, bn) for t in thread_counts for bn in (False, True)]:
        torch.manual_seed(1)
        net = model(a.arch, final_bn, a.width).to(device).train()
        opt = torch.optim.AdamW(net.parameters(), lr=1e-5, betas=(0.9, 0.99), eps=1e-5, weight_decay=1e-2)
        x = torch.rand(a.batch, 3, a.size, a.size, device=device) * 2 - 1
        y = torch.arange(a.batch, device=device) % 2
        # The clock the tfjs side uses: CPU time of the process (other jobs on a shared machine move it
        # less) when every row runs on one CPU thread; else, or on a GPU, the wall clock for all rows.
        clock = time.process_time if device.type == "cpu" and max(thread_counts) == 1 else time.perf_counter
        contenders.append({"threads": threads, "final_bn": final_bn, "net": net, "opt": opt, "x": x, "y": y, "clock": clock, "times": []})

    def step(c):
        c["opt"].zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(c["net"](c["x"]), c["y"])
        loss.backward()
        c["opt"].step()
        loss.item()  # waits for the step, as the tfjs bench waits for its loss

    def timed(c, reps):
        if device.type == "cpu":
            torch.set_num_threads(c["threads"])
        sync()
        start = c["clock"]()
        for _ in range(reps):
            step(c)
        sync()
        return (c["clock"]() - start) * 1000 / reps

    # Warm-up (cuDNN picks its algorithms), then rounds of enough steps for about min-ms each.
    for c in contenders:
        timed(c, 2)
        c["reps"] = max(1, round(a.min_ms / max(timed(c, 1), 1e-3)))
    for _ in range(a.rounds):
        for c in contenders:
            c["times"].append(timed(c, c["reps"]))

    rows = []
    for c in contenders:
        ms = statistics.median(c["times"])
        clock_name = "cpu" if c["clock"] is time.process_time else "wall"
        cpu_threads = c["threads"] if device.type == "cpu" else None
        rows.append({"arch": a.arch, "finalBN": c["final_bn"], "threads": cpu_threads, "clock": clock_name, "msPerStep": ms, "imagesPerSec": a.batch / ms * 1000})

    tf32 = device.type == "cuda" and torch.backends.cudnn.allow_tf32
    clock_name = rows[0]["clock"]
    print(json.dumps({"torch": torch.__version__, "device": name, "clock": clock_name, "tf32Convolutions": tf32, "rows": rows}))


if __name__ == "__main__":
    main()
