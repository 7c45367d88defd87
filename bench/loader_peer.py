#!/usr/bin/python3
"""torchvision peer of ctmq's JPEG loader benchmark (bench/jpeg_loader.cc).

ImageFolder + DataLoader with the ImageNet training transform of torchvision's
references/classification (RandomResizedCrop(224), RandomHorizontalFlip,
ToTensor, Normalize) or the evaluation transform (Resize(256),
CenterCrop(224)); `--workers W` worker processes (0 = in the main process),
batches of `--batch`, shuffled. Prints one JSON line: images/s over `--epochs`
passes after one warm-up batch, and images/s per core (W cores, or 1 for
W = 0). Run with Debian's /usr/bin/python3 (python3-torchvision).
"""
import argparse
import json
import time

import torch
import torchvision.datasets as datasets
import torchvision.transforms as T


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", required=True)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--transform", choices=["train", "eval"], default="train")
    a = p.parse_args()
    torch.set_num_threads(1)
    norm = T.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    if a.transform == "train":
        tf = T.Compose([T.RandomResizedCrop(a.size), T.RandomHorizontalFlip(), T.ToTensor(), norm])
    else:
        tf = T.Compose([T.Resize(round(a.size / 0.875)), T.CenterCrop(a.size), T.ToTensor(), norm])
    data = datasets.ImageFolder(a.root, transform=tf)
    loader = torch.utils.data.DataLoader(data, batch_size=a.batch, shuffle=True,
                                         num_workers=a.workers, persistent_workers=a.workers > 0)
    it = iter(loader)
    next(it)  # warm-up: worker start-up is not counted
    images, start = 0, time.perf_counter()
    for x, _ in it:
        images += x.shape[0]
    for _ in range(a.epochs - 1):
        for x, _ in loader:
            images += x.shape[0]
    seconds = time.perf_counter() - start
    cores = max(1, a.workers)
    print(json.dumps({"loader": "torchvision", "transform": a.transform, "workers": a.workers,
                      "images": images, "seconds": round(seconds, 3),
                      "images_per_s": round(images / seconds, 1),
                      "images_per_s_per_core": round(images / seconds / cores, 1)}))


if __name__ == "__main__":
    main()
