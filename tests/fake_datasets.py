"""Tiny fake data sets written in the exact on-disk formats, and the arrays they hold.

CIFAR: pickled python batches (protocol 2, the numpy path the original Python 2
files name); MNIST/Fashion-MNIST: idx files (gzipped or not) in torchvision's
root/<Name>/raw layout; SVHN: MATLAB v5 .mat (X (32, 32, 3, N), y (N, 1) with 10
for the digit 0); image folders: PNGs of random sizes, one folder per class.
Every writer returns what it wrote as (images uint8 (N, C, H, W), labels (N,)).
"""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np


def _images(rng, n, c, h, w):
    return rng.integers(0, 256, size=(n, c, h, w), dtype=np.uint8)


def _labels(rng, n, classes):
    # every class present, the rest random: unequal class sizes exercise the stratified subset
    y = np.concatenate([np.arange(classes), rng.integers(0, classes, size=max(0, n - classes))])[:n]
    return rng.permutation(y).astype(np.int64)


def _pickle_batch(path: Path, d: dict, bytes_keys: bool = False) -> None:
    if bytes_keys:
        d = {k.encode(): v for k, v in d.items()}
    raw = pickle.dumps(d, protocol=2)
    # The real batches were pickled by Python 2's numpy: its arrays name numpy.core.multiarray._reconstruct.
    raw = raw.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
    path.write_bytes(raw)


def write_cifar10(root: Path, per_batch: int = 12, n_test: int = 20, seed: int = 0, bytes_keys: bool = False):
    """root/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}; returns {'train': (x, y), 'test': (x, y)}."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, names, n in (("train", [f"data_batch_{i}" for i in range(1, 6)], per_batch), ("test", ["test_batch"], n_test)):
        xs, ys = [], []
        for name in names:
            x, y = _images(rng, n, 3, 32, 32), _labels(rng, n, 10)
            _pickle_batch(folder / name, {"batch_label": name, "labels": [int(v) for v in y], "data": x.reshape(n, 3072),
                                          "filenames": [f"img_{i}.png" for i in range(n)]}, bytes_keys)
            xs.append(x)
            ys.append(y)
        out[split] = (np.concatenate(xs), np.concatenate(ys))
    _pickle_batch(folder / "batches.meta", {"label_names": [f"c{i}" for i in range(10)], "num_vis": 3072}, bytes_keys)
    return out


def write_cifar100(root: Path, n_train: int = 300, n_test: int = 120, seed: int = 1):
    """root/cifar-100-python/{train, test, meta} with fine and coarse labels."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        x, y = _images(rng, n, 3, 32, 32), _labels(rng, n, 100)
        _pickle_batch(folder / split, {"filenames": [f"{i}.png" for i in range(n)], "batch_label": split,
                                       "fine_labels": [int(v) for v in y], "coarse_labels": [int(v) // 5 for v in y],
                                       "data": x.reshape(n, 3072)})
        out[split] = (x, y)
    _pickle_batch(folder / "meta", {"fine_label_names": [f"f{i}" for i in range(100)]})
    return out


def write_idx(path: Path, a: np.ndarray, gz: bool) -> None:
    header = bytes([0, 0, 0x08, a.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in a.shape)
    data = header + np.ascontiguousarray(a, dtype=np.uint8).tobytes()
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def write_mnist(root: Path, name: str = "MNIST", n_train: int = 50, n_test: int = 30, gz: bool = True, seed: int = 2,
                layout: str = "torchvision"):
    """The four idx files in root/<name>/raw (torchvision's layout) or directly in root (layout='flat')."""
    rng = np.random.default_rng(seed)
    folder = root / name / "raw" if layout == "torchvision" else root
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        x, y = _images(rng, n, 1, 28, 28), _labels(rng, n, 10)
        write_idx(folder / f"{prefix}-images-idx3-ubyte", x[:, 0], gz)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", y.astype(np.uint8), gz)
        out[split] = (x, y)
    return out


def write_svhn(root: Path, n_train: int = 40, n_test: int = 25, seed: int = 3):
    """root/train_32x32.mat and root/test_32x32.mat as SVHN ships them (labels 1..10, 10 meaning 0)."""
    import scipy.io

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        x, y = _images(rng, n, 3, 32, 32), _labels(rng, n, 10)
        stored = np.where(y == 0, 10, y).astype(np.uint8).reshape(n, 1)
        scipy.io.savemat(str(root / f"{split}_32x32.mat"), {"X": x.transpose(2, 3, 1, 0), "y": stored})  # (H, W, C, N)
        out[split] = (x, y)
    return out


def write_image_folder(root: Path, classes=("cat", "dog", "emu"), per_class=(5, 3, 4), size=None, seed: int = 4,
                       fmt: str = "png"):
    """root/<class>/<i>.png; fixed `size` (H, W) or random sizes between 20 and 40. Returns the paths per class."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    written = {}
    for c, n in zip(classes, per_class):
        (root / c).mkdir(parents=True, exist_ok=True)
        written[c] = []
        for i in range(n):
            h, w = size or (int(rng.integers(20, 41)), int(rng.integers(20, 41)))
            img = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
            path = root / c / f"{i:03d}.{fmt}"
            Image.fromarray(img).save(path)
            written[c].append(path)
    return written


def write_png_header(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims width x height RGB pixels, with a tiny (wrong) body: a decompression bomb's
    first bytes, enough for Pillow to judge the size, written without allocating the pixels."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))
