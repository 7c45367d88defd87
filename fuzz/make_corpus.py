#!/usr/bin/python3
"""Writes the seed corpus of every fuzz target into fuzz/corpus/NAME/.

Seeds are small pieces of real data: Fashion-MNIST images and labels (Debian's
dataset-fashion-mnist), the shards and manifest ctmq-shard wrote from them,
the committed run configs and a plan.tsv, and torch.save files of a small
network. Run from the repository root after the quick chain has sharded
Fashion-MNIST:  /usr/bin/python3 fuzz/make_corpus.py
The corpus is committed; rerunning this rewrites it.
"""
import collections
import gzip
import io
import json
import os
import shutil
import struct
import sys
import zipfile
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fuzz", "corpus")
MNIST = os.environ.get("CTMQ_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
SHARDS = os.path.join(ROOT, "shards", "fashion-mnist", "train")


def write(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def fashion_mnist(n):
    with gzip.open(os.path.join(MNIST, "t10k-images-idx3-ubyte.gz")) as f:
        head = f.read(16)
        images = [f.read(784) for _ in range(n)]
    with gzip.open(os.path.join(MNIST, "t10k-labels-idx1-ubyte.gz")) as f:
        f.read(8)
        labels = f.read(n)
    assert struct.unpack(">IIII", head)[0] == 0x803
    return images, labels


def idx_seeds(images, labels):
    for n in (1, 3):
        img = struct.pack(">IIII", 0x803, n, 28, 28) + b"".join(images[:n])
        lab = struct.pack(">II", 0x801, n) + labels[:n]
        write("idx", f"plain-{n}", struct.pack("<I", len(img)) + img + lab)
        write("idx", f"swapped-{n}", struct.pack("<I", len(lab)) + lab + img)
        gi, gl = gzip.compress(img, mtime=0), gzip.compress(lab, mtime=0)
        write("idx", f"gzip-{n}", struct.pack("<I", len(gi)) + gi + gl)
    # Regressions (docs/fuzzing.md): headers that claim 4 G labels, or a shape
    # whose pixel count overflows, with almost no data behind them.
    img = struct.pack(">IIII", 0x803, 0xFFFFFFFF, 28, 28) + images[0]
    lab = struct.pack(">II", 0x801, 0xFFFFFFFF) + labels[:1]
    write("idx", "regress-huge-count", struct.pack("<I", len(img)) + img + lab)
    img = struct.pack(">IIII", 0x803, 1, 0xFFFFFFFF, 0xFFFFFFFF) + images[0]
    lab = struct.pack(">II", 0x801, 1) + labels[:1]
    write("idx", "regress-huge-shape", struct.pack("<I", len(img)) + img + lab)


def pad32(image):
    rows = [b"\0\0" + image[r * 28:(r + 1) * 28] + b"\0\0" for r in range(28)]
    return b"\0" * 64 + b"".join(rows) + b"\0" * 64


def cifar_seeds(images, labels):
    rec10 = b"".join(bytes([labels[i]]) + pad32(images[i]) * 3 for i in range(2))
    rec100 = b"".join(bytes([labels[i] // 2, labels[i] * 9]) + pad32(images[i]) * 3 for i in range(2))
    write("cifar", "cifar10-2", b"\0" + rec10)
    write("cifar", "cifar100-2", b"\1" + rec100)


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width, height, color_type, depth, rows, palette=None, trns=None, interlace=False):
    """rows: the image as a list of bytes per row, already packed at `depth`."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 1 if interlace else 0)
    if interlace:
        raw = b""
        # Adam7: pass origin and step; rows and columns repacked per pass (8-bit only).
        bpp = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type] * depth // 8
        for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4),
                               (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)):
            for y in range(y0, height, dy):
                line = b"".join(rows[y][x * bpp:(x + 1) * bpp] for x in range(x0, width, dx))
                if line:
                    raw += b"\0" + line
    else:
        raw = b"".join(b"\0" + r for r in rows)
    out = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
    if palette:
        out += png_chunk(b"PLTE", palette)
    if trns:
        out += png_chunk(b"tRNS", trns)
    return out + png_chunk(b"IDAT", zlib.compress(raw, 9)) + png_chunk(b"IEND", b"")


def png_seeds(images):
    img = images[0]
    gray = [img[r * 28:(r + 1) * 28] for r in range(28)]
    rgb = [bytes(v for p in row for v in (p, 255 - p, p // 2)) for row in gray]
    seeds = {
        "gray8": png(28, 28, 0, 8, gray),
        "rgb8": png(28, 28, 2, 8, rgb),
        "gray-alpha8": png(28, 28, 4, 8, [bytes(v for p in row for v in (p, 200)) for row in gray]),
        "rgba8": png(28, 28, 6, 8, [bytes(v for p in row for v in (p, 255 - p, p // 2, 128))
                                    for row in gray]),
        "gray16": png(28, 28, 0, 16, [bytes(v for p in row for v in (p, p)) for row in gray]),
        "gray1": png(28, 28, 0, 1, [bytes(sum((row[8 * b + i] > 127) << (7 - i)
                                              for i in range(8) if 8 * b + i < 28)
                                          for b in range(4)) for row in gray]),
        "palette4": png(28, 28, 3, 8, [bytes(p >> 4 for p in row) for row in gray],
                        palette=bytes(v for i in range(16) for v in (i * 17, i * 17, 255 - i * 17)),
                        trns=bytes([0, 128])),
        "gray8-interlaced": png(28, 28, 0, 8, gray, interlace=True),
    }
    for name, data in seeds.items():
        write("png", name + "-gray", b"\1" + data)
        write("png", name + "-rgb", b"\0" + data)


def jpeg_seeds(images):
    """Fashion-MNIST images as JPEG in every colour space and coding mode the
    decoder handles, written by Pillow (libjpeg-turbo)."""
    import io
    from PIL import Image
    im = [Image.frombytes("L", (28, 28), images[i % len(images)]) for i in range(4)]
    rgb = Image.merge("RGB", im[0:3])
    seeds = {
        "gray-q90": (im[0], dict(quality=90)),
        "rgb-q50": (rgb, dict(quality=50)),
        "rgb-progressive-q75": (rgb, dict(quality=75, progressive=True)),
        "cmyk-q90": (Image.merge("CMYK", im[0:4]), dict(quality=90)),
    }
    for name, (image, options) in seeds.items():
        out = io.BytesIO()
        image.save(out, format="JPEG", **options)
        write("jpeg", name + "-gray", b"\1" + out.getvalue())
        write("jpeg", name + "-rgb", b"\0" + out.getvalue())


def shard_seeds():
    with open(os.path.join(SHARDS, "shard-00000.ctmq"), "rb") as f:
        header = bytearray(f.read(64))
        rec = 4 + 784 + 4
        records = f.read(3 * rec)
    assert header[:8] == b"CTMQSHRD"
    # The real header, its record count cut to the records kept, checksum redone.
    struct.pack_into("<Q", header, 32, 3)
    struct.pack_into("<I", header, 52, zlib.crc32(bytes(header[:52])))
    shard = bytes(header) + records
    write("shard", "fmnist-3", b"\0" + shard)
    write("shard", "fmnist-3-repair", b"\7" + shard)
    write("shard", "fmnist-header-only", b"\4" + bytes(header))
    # Regression (docs/fuzzing.md): a header whose 32-bit sizes overflow the
    # pixel count (checksum valid).
    big = bytearray(header)
    struct.pack_into("<III", big, 16, 0xFFFFFFFF, 0xFFFFFFFF, 0xF0000000)
    struct.pack_into("<I", big, 52, zlib.crc32(bytes(big[:52])))
    write("shard", "regress-shape-overflow", b"\0" + bytes(big))


def manifest_seeds():
    with open(os.path.join(SHARDS, "manifest.json"), "rb") as f:
        text = f.read()
    write("manifest", "fmnist-train", text)
    m = json.loads(text, object_pairs_hook=collections.OrderedDict)
    m["shards"] = m["shards"][:1]
    m["count"] = m["shards"][0]["count"]
    write("manifest", "fmnist-one-shard", json.dumps(m, indent=2).encode() + b"\n")
    # Regressions (docs/fuzzing.md): a shape whose pixel count overflows
    # int64, and shard counts whose sum does.
    big = dict(m, channels=2**32, height=2**32, width=2**32)
    write("manifest", "regress-shape-overflow", json.dumps(big).encode())
    two = json.loads(json.dumps(m), object_pairs_hook=collections.OrderedDict)
    two["shards"].append(dict(two["shards"][0]))
    two["shards"][0]["count"] = 2**63 - 1
    two["shards"][1]["first_index"] = 2**63 - 1
    write("manifest", "regress-count-overflow", json.dumps(two).encode())


def config_seeds():
    for name in sorted(os.listdir(os.path.join(ROOT, "pipeline", "configs"))):
        with open(os.path.join(ROOT, "pipeline", "configs", name), "rb") as f:
            write("config", name, f.read())


def plan_seeds():
    # Plans of real runs; the checksum line (plan.tsv since 2026-11-29) is
    # recomputed here for the first form and left to the target for the second.
    for rel in ("runs/fashion-mnist-quick/plan.tsv", "runs/pilot-w1a1/seed100/b3/plan.tsv"):
        path = os.path.join(ROOT, rel)
        if os.path.exists(path):
            with open(path, "rb") as f:
                lines = f.read().splitlines(keepends=True)
            body = b"".join(l for l in lines if not l.startswith(b"# crc32 "))
            name = rel.replace("/", "_")
            crc = b"# crc32 %08x\n" % zlib.crc32(body)
            write("plan_tsv", name, b"\0" + body + crc)
            write("plan_tsv", name + ".body", b"\1" + body)


def torch_seeds():
    import torch  # python3-torch

    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2),
                              torch.nn.Flatten(), torch.nn.Linear(2, 3))
    dicts = {
        "state-dict": net.state_dict(),
        "plain-dict": {"weight": torch.arange(6, dtype=torch.float32).view(2, 3),
                       "count": torch.tensor(7), "half": torch.ones(4, dtype=torch.float16)},
        "transposed": {"t": torch.arange(12, dtype=torch.float64).view(3, 4).t()},
    }
    for name, sd in dicts.items():
        buf = io.BytesIO()
        torch.save(sd, buf)
        data = buf.getvalue()
        write("torch_pickle", name + ".pt", b"\0" + data)
        legacy = io.BytesIO()
        torch.save(sd, legacy, _use_new_zipfile_serialization=False)
        write("torch_pickle", name + ".legacy.pt", b"\0" + legacy.getvalue())
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            pkl = [n for n in z.namelist() if n.endswith("/data.pkl")][0]
            write("torch_pickle", name + ".pkl", b"\1" + z.read(pkl))


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    images, labels = fashion_mnist(3)
    idx_seeds(images, labels)
    cifar_seeds(images, labels)
    png_seeds(images)
    jpeg_seeds(images)
    shard_seeds()
    manifest_seeds()
    config_seeds()
    plan_seeds()
    torch_seeds()
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(OUT) for f in fs)
    print(f"make_corpus: {total} bytes in {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
