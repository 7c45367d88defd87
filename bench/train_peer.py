#!/usr/bin/python3
"""PyTorch (Python eager) peer of ctmq-bench-train-throughput.

The same network as ctmq's ResNet-20 (src/ctmq/model/resnet.cc: 3x3 stem,
3 stages x 3 BasicBlocks, full-precision stem / fc / 1x1 shortcuts, Bi-Real
blocks with the activation quantizer when activations are quantized) and the
same quantizers (method.md: DoReFa weights, signed activations, binary
alpha*sign(W) weights and ApproxSign activations at 1 bit), trained with SGD
(momentum 0.9) on random 32x32 images. Prints one JSON line: images/s and the
process's peak RSS. Run with Debian's /usr/bin/python3 (python3-torch).
"""
import argparse
import json
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

FP = 32


class ApproxSign(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        slope = torch.where(x < 0, 2 + 2 * x, 2 - 2 * x)
        return g * torch.where(x.abs() <= 1, slope, torch.zeros_like(x))


def ste_round(x, levels):
    return x + (torch.round(x * levels) / levels - x).detach()


def quantize_weight(w, k):
    if k == FP:
        return w
    if k == 1:
        alpha = w.abs().mean(dim=(1, 2, 3), keepdim=True).detach()
        clipped = w.clamp(-1, 1)
        return alpha * (clipped + (torch.sign(w) - clipped).detach())
    t = torch.tanh(w)
    x = t / (2 * t.abs().max().clamp_min(1e-12)) + 0.5
    return 2 * ste_round(x, 2**k - 1) - 1


def quantize_activation(x, k):
    if k == FP:
        return x
    if k == 1:
        return ApproxSign.apply(x)
    u = (x.clamp(-1, 1) + 1) / 2
    return 2 * ste_round(u, 2**k - 1) - 1


class QConv(nn.Conv2d):
    def __init__(self, cin, cout, kernel, stride, padding, edge):
        super().__init__(cin, cout, kernel, stride, padding, bias=False)
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")
        self.edge = edge
        self.bits = (FP, FP)

    def forward(self, x):
        wb, ab = (FP, FP) if self.edge else self.bits
        return F.conv2d(quantize_activation(x, ab), quantize_weight(self.weight, wb), None,
                        self.stride, self.padding)


class Block(nn.Module):
    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = QConv(cin, planes, 3, stride, 1, False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = QConv(planes, planes, 3, 1, 1, False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or cin != planes:
            self.downsample = nn.Sequential(QConv(cin, planes, 1, stride, 0, True),
                                            nn.BatchNorm2d(planes))

    def forward(self, x):
        shortcut = self.downsample(x) if self.downsample is not None else x
        if self.conv1.bits[1] == FP:
            out = F.relu(self.bn1(self.conv1(x)))
            return F.relu(self.bn2(self.conv2(out)) + shortcut)
        mid = self.bn1(self.conv1(x)) + shortcut
        return self.bn2(self.conv2(mid)) + mid


class ResNet20(nn.Module):
    def __init__(self, width=16, in_channels=3, classes=10):
        super().__init__()
        self.conv1 = QConv(in_channels, width, 3, 1, 1, True)
        self.bn1 = nn.BatchNorm2d(width)
        layers, cin = [], width
        for planes, stride in ((width, 1), (2 * width, 2), (4 * width, 2)):
            blocks = []
            for b in range(3):
                blocks.append(Block(cin, planes, stride if b == 0 else 1))
                cin = planes
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = layers
        self.fc = nn.Linear(cin, classes)
        self.activation_bits = FP

    def set_bits(self, w, a):
        self.activation_bits = a
        for m in self.modules():
            if isinstance(m, QConv):
                m.bits = (w, a)

    def forward(self, x):
        x = self.bn1(self.conv1(x))
        if self.activation_bits == FP:
            x = F.relu(x)
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--bits", type=int, default=32, help="W=A bits: 32, 1..8")
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--steps", type=int, default=5, help="timed steps (after 2 warm-up steps)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu", help="cpu | cuda")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--channels-last", action="store_true",
                   help="model and images in channels-last memory format (PyTorch's recipe)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    net = ResNet20(args.width).to(device)
    net.set_bits(args.bits, args.bits)
    net.train()
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    net = net.to(memory_format=memory_format)
    sgd = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    model = torch.compile(net) if args.compile else net
    images = torch.randn(args.batch, 3, 32, 32).to(device).contiguous(memory_format=memory_format)
    labels = torch.randint(0, 10, (args.batch,)).to(device)

    def synchronize():
        if device.type == "cuda":
            torch.cuda.synchronize()

    def step():
        sgd.zero_grad()
        F.cross_entropy(model(images), labels).backward()
        sgd.step()

    for _ in range(3 if args.compile else 2):  # compiled: the first steps compile
        step()
    synchronize()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    synchronize()
    elapsed = time.perf_counter() - start
    print(json.dumps({
        "impl": "pytorch-compile" if args.compile else "pytorch-eager",
        "channels_last": args.channels_last,
        "torch": torch.__version__, "batch": args.batch, "device": args.device,
        "bits": args.bits, "threads": args.threads, "steps": args.steps,
        "images_per_s": args.batch * args.steps / elapsed,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }))


if __name__ == "__main__":
    main()
