"""Fashion-MNIST test images by class, for the integration scripts that build
image folders with Pillow (shard_jpeg.sh, shard_encoded_train.sh; import it
with PYTHONPATH=$src/tests/integration). Not a test."""
import gzip
import os

from PIL import Image


def first_test_images(mnist, per_class, classes=3):
    """Yields (class, k, image) for the first `per_class` images of each class
    below `classes` in the test split of the gzipped IDX files in `mnist`, in
    file order; k counts from 0 within the class; image is 28x28 Pillow "L"."""
    images = gzip.open(os.path.join(mnist, "t10k-images-idx3-ubyte.gz")).read()[16:]
    labels = gzip.open(os.path.join(mnist, "t10k-labels-idx1-ubyte.gz")).read()[8:]
    seen = {c: 0 for c in range(classes)}
    for i, c in enumerate(labels):
        if c >= classes or seen[c] == per_class:
            continue
        k = seen[c]
        seen[c] += 1
        yield c, k, Image.frombytes("L", (28, 28), images[i * 784:(i + 1) * 784])
