#!/usr/bin/python3
"""An ImageNet-like JPEG folder made from real Fashion-MNIST images.

There is no ImageNet on the development machine; the loader benchmarks need
JPEG files of ImageNet's typical size, colour and detail. Each file is labelled by one
Fashion-MNIST image, upscaled (bicubic) to a size drawn around ImageNet's
common 500x375 / 375x500 / 500x333 shapes, over a background mosaic of other
real Fashion-MNIST images at 1-2x (so the JPEG carries photo-like detail: about
ImageNet's ~110 kB per file rather than the ~13 kB of a smooth upscale); the
three channels are different images, so the file is a true colour image.
Saved by Pillow as baseline JPEG (quality 90, 4:2:0), as ROOT/CLASS/NNNNN.jpg
(torchvision ImageFolder layout). Deterministic in --seed.

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
        def tile(k):
            return Image.frombytes("L", (28, 28), images[k * 784:(k + 1) * 784])
        w, h = rng.choice(SHAPES)
        planes = []
        for _ in range(3):
            plane = Image.new("L", (w, h))
            side = rng.choice([28, 42, 56])
            for y in range(0, h, side):
                for x in range(0, w, side):
                    k = rng.randrange(len(labels))
                    plane.paste(tile(k).resize((side, side), Image.BICUBIC), (x, y))
            planes.append(plane)
        big = tile(i).resize((w * 3 // 5, h * 3 // 5), Image.BICUBIC)
        mask = big.point(lambda v: 255 if v > 20 else 0)
        for plane, fg in zip(planes, (big, ImageOps.invert(big), big)):
            plane.paste(fg, (w // 5, h // 5), mask)
        rgb = Image.merge("RGB", planes)
        d = os.path.join(a.output, f"class{c}")
        os.makedirs(d, exist_ok=True)
        rgb.save(os.path.join(d, f"{seen[c]:05d}.jpg"), quality=a.quality)
        total += 1
        if min(seen) == a.per_class:
            break
    print(f"{total} JPEG files under {a.output}")


if __name__ == "__main__":
    main()
