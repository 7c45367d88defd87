"""A ctmq network rebuilt in plain PyTorch from `ctmq-export --format state-dict`.

The export is two files (docs/deploy.md, "In PyTorch"): MODEL.pt, a dict of
tensor name -> tensor that torch.load reads, and MODEL.pt.json, the network
description (architecture, width, classes, block, bit depths per layer,
quantizer kinds, granularity, edge_layer_bits, input normalisation).

    from ctmq_analysis import torch_model
    net = torch_model.load("c1-w1a1.pt")          # evaluation mode
    x = torch_model.normalise(pixels, net.description)  # uint8 [N, C, H, W]
    logits = net(x)                                 # float32 [N, classes]

The forward is ctmq's fake-quantized forward (evaluation mode: running
BatchNorm statistics), written with the same torch ops in the same order as
src/ctmq/quant/quantizers.cc, so on the same LibTorch version the logits agree
with ctmq's up to the float rounding of the convolution kernels. The ResNet
layouts are those of src/ctmq/model/resnet.cc; the quantizer formulas those of
docs/quantizers.md. Forward only: there are no straight-through gradients, so
this model is for evaluation, not for training.

Every quantizer kind of ctmq is supported: weights dorefa | lsq (per-tensor or
per-channel), binary at 1 bit; activations signed | unsigned | lsq | pact.
A description of another format, a newer version, an unknown kind, or tensors
that do not match raise ExportError naming the file.

Command line (exit 0; 2 for a bad export):
    python3 -m ctmq_analysis.torch_model MODEL.pt --fashion-mnist DIR
prints {"images": N, "correct": C, "top1": P} for the t10k split.
"""

import gzip
import json
import os
import zlib

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

FORMAT = "ctmq-state-dict"
VERSION = 1
FULL_PRECISION = 32


class ExportError(Exception):
    """An export cannot be read or rebuilt; str(e) is "PATH: what is wrong; what to do"."""

    def __init__(self, path, message):
        super().__init__("%s: %s" % (path, message))
        self.path = path


# --- quantizers (docs/quantizers.md; the op order of quantizers.cc) ---------


def _levels(bits):
    return float((1 << bits) - 1)


def _binary_sign(x):
    return x.ge(0).to(x.dtype).mul_(2).sub_(1)


def _channel_shape(like):
    return [like.size(0)] + [1] * (like.dim() - 1)


def binary_weight(w):
    """alpha sign(W), alpha = mean |W| per output channel."""
    alpha = w.abs().reshape(w.size(0), -1).mean(1).view(_channel_shape(w))
    return _binary_sign(w).mul_(alpha)


def dorefa_weight(w, bits, per_channel):
    """t = tanh W, x = t / (2 max|t|) + 1/2, W_q = 2 q_k(x) - 1."""
    t = torch.tanh(w)
    if per_channel:
        max_abs = t.abs().reshape(w.size(0), -1).amax(1).view(_channel_shape(w))
    else:
        max_abs = t.abs().max()
    x = t / (2 * max_abs.clamp_min(1e-12)) + 0.5
    n = _levels(bits)
    return x.mul(n).round_().div_(n) * 2 - 1


def lsq_quantize(v, step, bits):
    """s round(clip(v / s, -Q_N, Q_P)), Q_N = 2^(k-1), Q_P = 2^(k-1) - 1."""
    qn, qp = 1 << (bits - 1), (1 << (bits - 1)) - 1
    s = step.reshape(()) if step.numel() == 1 else step.view(_channel_shape(v))
    return v.div(s).clamp_(-qn, qp).round_().mul_(s)


def signed_activation(x, bits):
    """2 q_k((clip(x, -1, 1) + 1) / 2) - 1; sign(x) (x >= 0 -> +1) at 1 bit."""
    if bits == 1:
        return _binary_sign(x)
    h = _levels(bits) / 2
    return x.clamp(-1, 1).mul_(h).add_(h).round_().div_(h).sub_(1)


def unsigned_activation(x, bits):
    """q_k(clip(x, 0, 1))."""
    n = _levels(bits)
    return x.clamp(0, 1).mul_(n).round_().div_(n)


def pact_activation(x, alpha, bits):
    """y = clip(x, -alpha, alpha); y at 32 bits, else alpha signed(y / alpha, k)."""
    a = alpha.to(x.dtype)
    y = torch.minimum(torch.maximum(x, -a), a)
    if bits == FULL_PRECISION:
        return y
    return signed_activation(y / a, bits) * a


# --- layers -------------------------------------------------------------------


class _Quantizer:
    """The per-layer quantization of src/ctmq/quant/layer_quantizer.cc."""

    def _setup(self, quant, edge, out_channels):
        self.weight_kind = quant["weight"]
        self.activation_kind = quant["activation"]
        self.per_channel = quant["weight_granularity"] == "per-channel"
        self.full_precision_limit = quant["full_precision_limit"]
        self.edge = edge
        self.weight_bits = FULL_PRECISION
        self.activation_bits = FULL_PRECISION
        if self.weight_kind == "lsq":
            steps = out_channels if self.per_channel else 1
            self.weight_step = nn.Parameter(torch.zeros(steps), requires_grad=False)
        if not edge and self.activation_kind == "lsq":
            self.input_step = nn.Parameter(torch.zeros(1), requires_grad=False)
        if not edge and self.activation_kind == "pact":
            self.input_clip = nn.Parameter(torch.ones(1), requires_grad=False)

    def quantized_weight(self):
        w, k = self.weight, self.weight_bits
        if k == FULL_PRECISION:
            return w
        if k == 1:
            return binary_weight(w)
        if self.weight_kind == "lsq":
            return lsq_quantize(w, self.weight_step, k)
        return dorefa_weight(w, k, self.per_channel)

    def quantized_input(self, x):
        k = self.activation_bits
        if self.edge:
            return x
        kind = self.activation_kind
        if kind == "pact":
            if k == FULL_PRECISION and not self.full_precision_limit:
                return x
            return pact_activation(x, self.input_clip, k)
        if k == FULL_PRECISION:
            if not self.full_precision_limit:
                return x
            return F.hardtanh(x, 0.0, 1.0) if kind == "unsigned" else F.hardtanh(x, -1.0, 1.0)
        if kind == "signed":
            return signed_activation(x, k)
        if kind == "unsigned":
            return unsigned_activation(x, k)
        if k == 1:  # LSQ is undefined at 1 bit: the signed binary quantizer
            return signed_activation(x, 1)
        if float(self.input_step) <= 0:
            raise ValueError("the LSQ input step is not initialised (0)")
        return lsq_quantize(x, self.input_step, k)


class QuantConv2d(nn.Conv2d, _Quantizer):
    def __init__(self, cin, cout, kernel, stride, padding, edge, quant):
        nn.Conv2d.__init__(self, cin, cout, kernel, stride, padding, bias=False)
        self._setup(quant, edge, cout)

    def forward(self, x):
        return F.conv2d(self.quantized_input(x), self.quantized_weight(), self.bias,
                        self.stride, self.padding)


class QuantLinear(nn.Linear, _Quantizer):
    def __init__(self, cin, cout, edge, quant):
        nn.Linear.__init__(self, cin, cout, bias=True)
        self._setup(quant, edge, cout)

    def forward(self, x):
        return F.linear(self.quantized_input(x), self.quantized_weight(), self.bias)


class BasicBlock(nn.Module):
    """Bi-Real: mid = bn1(conv1(x)) + shortcut(x), out = bn2(conv2(mid)) + mid (the
    activation quantizer inside each conv); torchvision at full-precision
    activations: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))."""

    def __init__(self, cin, planes, stride, quant, block):
        super().__init__()
        self.block = block
        self.conv1 = QuantConv2d(cin, planes, 3, stride, 1, False, quant)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = QuantConv2d(planes, planes, 3, 1, 1, False, quant)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or cin != planes:
            self.downsample = nn.Sequential(QuantConv2d(cin, planes, 1, stride, 0, True, quant),
                                            nn.BatchNorm2d(planes))

    def forward(self, x):
        shortcut = self.downsample(x) if self.downsample is not None else x
        if self.block == "torchvision" and self.conv1.activation_bits == FULL_PRECISION:
            out = torch.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return torch.relu(out + shortcut)
        mid = self.bn1(self.conv1(x)) + shortcut
        return self.bn2(self.conv2(mid)) + mid


# (imagenet stem, planes per stage, blocks per stage, first stride per stage):
# resnet_layout() of src/ctmq/model/resnet.cc.
def resnet_layout(architecture, width):
    w = width
    if architecture == "resnet18":
        return True, [64, 128, 256, 512], [2, 2, 2, 2], [1, 2, 2, 2]
    if architecture == "resnet20":
        return False, [w, 2 * w, 4 * w], [3, 3, 3], [1, 2, 2]
    if architecture == "small-resnet":
        return False, [w, 2 * w, 4 * w], [1, 1, 1], [2, 2, 2]
    raise ValueError("architecture %r is not known; ctmq has resnet18, resnet20, small-resnet"
                     % architecture)


class CtmqResNet(nn.Module):
    def __init__(self, description):
        super().__init__()
        d = description
        self.description = d
        self.block = d["block"]
        q = dict(d["quantizers"])
        q["full_precision_limit"] = self.block == "bi-real"
        edge_q = dict(q)  # the stem and fc use the network's quantizer options as given
        imagenet_stem, planes, blocks, strides = resnet_layout(d["architecture"], d["width"])
        self.imagenet_stem = imagenet_stem
        stem = planes[0]
        if imagenet_stem:
            self.conv1 = QuantConv2d(d["in_channels"], stem, 7, 2, 3, True, edge_q)
        else:
            self.conv1 = QuantConv2d(d["in_channels"], stem, 3, 1, 1, True, edge_q)
        self.bn1 = nn.BatchNorm2d(stem)
        cin = stem
        self.stages = []
        for s, (p, n, stride) in enumerate(zip(planes, blocks, strides)):
            stage = nn.Sequential(*[BasicBlock(cin if b == 0 else p, p, stride if b == 0 else 1,
                                               q, self.block) for b in range(n)])
            cin = p
            self.add_module("layer%d" % (s + 1), stage)
            self.stages.append(stage)
        self.fc = QuantLinear(cin, d["num_classes"], True, edge_q)
        self.activation_bits = d["bits"]["activation"]

    def forward(self, x):
        x = self.bn1(self.conv1(x))
        if self.block == "torchvision" and self.activation_bits == FULL_PRECISION:
            x = torch.relu(x)
        if self.imagenet_stem:
            x = F.max_pool2d(x, 3, 2, 1)
        for stage in self.stages:
            x = stage(x)
        x = F.adaptive_avg_pool2d(x, (1, 1)).flatten(1)
        return self.fc(x)


# --- reading an export --------------------------------------------------------

_KINDS = {
    ("quantizers", "weight"): ("dorefa", "lsq"),
    ("quantizers", "activation"): ("signed", "unsigned", "lsq", "pact"),
    ("quantizers", "weight_granularity"): ("per-tensor", "per-channel"),
    ("block",): ("bi-real", "torchvision"),
    ("architecture",): ("resnet18", "resnet20", "small-resnet"),
}


def description_path(path):
    return path + ".json"


def read_description(path):
    """The description of export `path` (path + ".json"), checked against `path`'s bytes."""
    jpath = description_path(path)
    try:
        with open(jpath) as f:
            d = json.load(f)
    except OSError as e:
        raise ExportError(jpath, "cannot read the description (%s); export with "
                          "ctmq-export --format state-dict, which writes it beside the .pt"
                          % e.strerror)
    except ValueError as e:
        raise ExportError(jpath, "not valid JSON (%s); export again" % e)
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise ExportError(jpath, "not a ctmq state-dict description (format %r, expected %r)"
                          % (d.get("format") if isinstance(d, dict) else None, FORMAT))
    if not isinstance(d.get("version"), int) or d["version"] > VERSION:
        raise ExportError(jpath, "description version %r is newer than this reader's %d; use "
                          "the torch_model.py of the ctmq that exported it" % (d.get("version"),
                                                                             VERSION))
    for keys, allowed in _KINDS.items():
        v = d
        for k in keys:
            v = v.get(k) if isinstance(v, dict) else None
        if v not in allowed:
            raise ExportError(jpath, "%s %r is not supported; this reader knows %s"
                              % (".".join(keys), v, ", ".join(allowed)))
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ExportError(path, "cannot read the state dict (%s)" % e.strerror)
    crc = "%08x" % (zlib.crc32(data) & 0xFFFFFFFF)
    if len(data) != d["state_dict_bytes"] or crc != d["state_dict_crc32"]:
        raise ExportError(path, "%d bytes, CRC-32 %s, but %s describes %d bytes, CRC-32 %s: the "
                          "two files are from different exports or one was damaged; export again"
                          % (len(data), crc, jpath, d["state_dict_bytes"], d["state_dict_crc32"]))
    return d


def load(path):
    """The network of export `path`, in evaluation mode, on the CPU."""
    d = read_description(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch.load raises many kinds for a damaged zip or pickle
        raise ExportError(path, "torch.load cannot read it (%s: %s); export again"
                          % (type(e).__name__, e))
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ExportError(path, "torch.load did not return a dict of tensors")
    net = CtmqResNet(d)
    layers = {name: m for name, m in net.named_modules() if isinstance(m, _Quantizer)}
    described = [entry["name"] for entry in d["layers"]]
    if sorted(described) != sorted(layers):
        raise ExportError(description_path(path), "the quantized layers %s differ from those "
                          "of %s width %d as rebuilt here %s" % (described, d["architecture"],
                                                                 d["width"], sorted(layers)))
    for entry in d["layers"]:
        layer = layers[entry["name"]]
        if bool(entry["edge"]) != layer.edge:
            raise ExportError(description_path(path), "layer %s: edge %s, rebuilt as %s"
                              % (entry["name"], entry["edge"], layer.edge))
        layer.weight_bits = int(entry["weight_bits"])
        layer.activation_bits = int(entry["activation_bits"])
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ExportError(path, "the tensors do not fit the described network: %s" % e)
    for name, layer in layers.items():
        k = layer.activation_bits
        if hasattr(layer, "input_step") and 2 <= k <= 8 and float(layer.input_step) <= 0:
            raise ExportError(path, "layer %s: the LSQ input step is 0 (never initialised); "
                              "train at least one batch at these bit depths" % name)
    net.eval()
    return net


def normalise(pixels, description):
    """uint8 pixels [N, C, H, W] -> the float32 input ctmq feeds the network:
    (pixel / 255 - mean[c]) / std[c], computed as ctmq's ShardDataset does
    (times float32(1/255), minus float32 mean, times float32(1/std))."""
    mean = np.array(description["input"]["mean"], dtype=np.float64)
    std = np.array(description["input"]["std"], dtype=np.float64)
    c = len(mean)
    mean_t = torch.tensor(mean.astype(np.float32)).view(1, c, 1, 1)
    inv = np.where(std > 0, 1.0 / np.where(std > 0, std, 1.0), 1.0).astype(np.float32)
    inv_t = torch.tensor(inv).view(1, c, 1, 1)
    scale = float(np.float32(1.0) / np.float32(255.0))
    return pixels.to(torch.float32).mul_(scale).sub_(mean_t).mul_(inv_t)


def read_idx_images(images_gz, labels_gz):
    """Fashion-MNIST / MNIST IDX (gzipped): uint8 [N, 1, 28, 28], int64 [N]."""
    with gzip.open(images_gz) as f:
        raw = f.read()
    n, rows, cols = (int.from_bytes(raw[i:i + 4], "big") for i in (4, 8, 12))
    images = torch.frombuffer(bytearray(raw[16:16 + n * rows * cols]), dtype=torch.uint8)
    with gzip.open(labels_gz) as f:
        labels = torch.frombuffer(bytearray(f.read()[8:8 + n]), dtype=torch.uint8)
    return images.view(n, 1, rows, cols), labels.to(torch.int64)


@torch.no_grad()
def evaluate(net, pixels, labels, batch=200):
    """Correct top-1 predictions (topk's first index, as ctmq-eval) over uint8 pixels."""
    correct = 0
    for first in range(0, pixels.size(0), batch):
        x = normalise(pixels[first:first + batch], net.description)
        predicted = net(x).topk(1, 1)[1][:, 0]
        correct += int(predicted.eq(labels[first:first + batch]).sum())
    return correct


def main(argv=None):
    import argparse
    import sys
    p = argparse.ArgumentParser(prog="python3 -m ctmq_analysis.torch_model",
                                description="Evaluate a ctmq state-dict export in PyTorch "
                                "on Fashion-MNIST's 10,000 test images.")
    p.add_argument("model", help="MODEL.pt written by ctmq-export --format state-dict")
    p.add_argument("--fashion-mnist", required=True, metavar="DIR",
                   help="directory with t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz")
    p.add_argument("--threads", type=int, default=1, metavar="N")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        net = load(args.model)
    except ExportError as e:
        print("torch_model: error: %s" % e, file=sys.stderr)
        return 2
    pixels, labels = read_idx_images(
        os.path.join(args.fashion_mnist, "t10k-images-idx3-ubyte.gz"),
        os.path.join(args.fashion_mnist, "t10k-labels-idx1-ubyte.gz"))
    if net.description["in_channels"] != 1:
        pixels = pixels.repeat(1, net.description["in_channels"], 1, 1)
    correct = evaluate(net, pixels, labels)
    print(json.dumps({"images": int(labels.numel()), "correct": correct,
                      "top1": 100.0 * correct / labels.numel()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
