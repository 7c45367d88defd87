#!/usr/bin/python3
"""An ImageNet-like JPEG folder made from real Fashion-MNIST images.

There is no ImageNet on the development machine; the loader benchmarks need
JPEG files of ImageNet's typical size and colour. Each Fashion-MNIST image is
upscaled (bicubic) to a size drawn around ImageNet's common 500x375 / 375x500
/ 500x333 shapes, tinted into three different channels so the file is a true
colour image, and saved by Pillow as baseline JPEG (quality 90, 4:2:0), as
ROOT/CLASS/NNNNN.jpg (torchvision ImageFolder layout). Deterministic in --seed.

Usage: /usr/bin/python3 bench/make_jpeg_folder.py --mnist DIR --output ROOT
           [--per-class 100] [--split t10k|train] [--seed 1]
"""
import argparse
import gzip
import os
import random

from PIL import Image, ImageOps

SHAPES = [(500, 375), (375, 500), (500, 333), (500, 400), (400, 300)]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mnist", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--output", required=True)
    p.add_argument("--per-class", type=int, default=100)
    p.add_argument("--split", default="t10k", choices=["t10k", "train"])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--quality", type=int, default=90)
    a = p.parse_args()
    images = gzip.open(os.path.join(a.mnist, f"{a.split}-images-idx3-ubyte.gz")).read()[16:]
    labels = gzip.open(os.path.join(a.mnist, f"{a.split}-labels-idx1-ubyte.gz")).read()[8:]
    rng = random.Random(a.seed)
    seen = [0] * 10
    total = 0
    for i, c in enumerate(labels):
        if seen[c] == a.per_class:
            continue
        seen[c] += 1
        grey = Image.frombytes("L", (28, 28), images[i * 784:(i + 1) * 784])
        w, h = rng.choice(SHAPES)
        big = grey.resize((w, h), Image.BICUBIC)
        rgb = Image.merge("RGB", (big, ImageOps.invert(big), big.rotate(180)))
        d = os.path.join(a.output, f"class{c}")
        os.makedirs(d, exist_ok=True)
        rgb.save(os.path.join(d, f"{seen[c]:05d}.jpg"), quality=a.quality)
        total += 1
        if min(seen) == a.per_class:
            break
    print(f"{total} JPEG files under {a.output}")


if __name__ == "__main__":
    main()
