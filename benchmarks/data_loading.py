"""Loading a data set into full-batch tensors: landscape's direct readers beside torchvision's dataset classes.

For each format, a fake data set of the real one's size is written to a temporary
folder in its exact on-disk format (tests/fake_datasets.py), then loaded into one
normalized float32 tensor (N, C, H, W) and the labels, both ways, in alternating
rounds; the table gives the median seconds of `--repeats` rounds and the ratio.
- ours: landscape.datasets.load_dataset (unpickle / idx / .mat read once, one vectorized
  conversion; image folders decode with Pillow in a thread pool).
- torchvision: its dataset class with ToTensor + Normalize (+ Resize/CenterCrop for
  image folders) per sample, stacked, the way a DataLoader-based tool fills memory.
  Its CIFAR class checks the archives' md5 sums, which fake files fail: that check is
  skipped (so its row is, if anything, fast).

Run: python benchmarks/data_loading.py [--repeats 3] [--images 2000]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from landscape.datasets import NORMALIZATION, load_dataset  # noqa: E402
from landscape.vision import import_torchvision  # noqa: E402
from tests.fake_datasets import write_cifar10, write_image_folder, write_mnist  # noqa: E402


def _stack(ds) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*(ds[i] for i in range(len(ds))))
    return torch.stack(xs), torch.tensor(ys)


def torchvision_loaders(tv, roots: dict, size: int):
    T = tv.transforms

    def norm(kind):
        return T.Compose([T.ToTensor(), T.Normalize(*NORMALIZATION[kind])])

    def cifar():
        cls = tv.datasets.CIFAR10
        cls._check_integrity = lambda self: True  # fake archives: skip the md5 checks
        tv.datasets.cifar.check_integrity = lambda *a, **k: True
        return _stack(cls(str(roots["cifar10"]), train=True, download=False, transform=norm("cifar10")))

    def mnist():
        return _stack(tv.datasets.MNIST(str(roots["mnist"]), train=True, download=False, transform=norm("mnist")))

    def folder():
        tf = T.Compose([T.Resize(size), T.CenterCrop(size), T.ToTensor(), T.Normalize(*NORMALIZATION["image_folder"])])
        return _stack(tv.datasets.ImageFolder(str(roots["image_folder"]), transform=tf))

    return {"cifar10": cifar, "mnist": mnist, "image_folder": folder}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--images", type=int, default=2000, help="images in the fake image folder (10 classes)")
    ap.add_argument("--size", type=int, default=64, help="image folder: resize + centre crop to this")
    args = ap.parse_args()
    torch.set_num_threads(1)
    tv = import_torchvision()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        roots = {"cifar10": tmp / "cifar", "mnist": tmp / "mnist", "image_folder": tmp / "folder"}
        write_cifar10(roots["cifar10"], per_batch=10_000, n_test=10)  # CIFAR-10's 50,000 training images
        write_mnist(roots["mnist"], n_train=60_000, n_test=10, gz=False)  # torchvision reads the unpacked files
        per = args.images // 10
        write_image_folder(roots["image_folder"], classes=[f"c{i}" for i in range(10)], per_class=[per] * 10,
                           size=(96, 128), fmt="jpeg")
        ours = {
            "cifar10": lambda: load_dataset("cifar10", roots["cifar10"], "train"),
            "mnist": lambda: load_dataset("mnist", roots["mnist"], "train"),
            "image_folder": lambda: load_dataset("image_folder", roots["image_folder"], None, size=args.size),
        }
        theirs = torchvision_loaders(tv, roots, args.size)
        rows = []
        for kind in ours:
            a, b = ours[kind](), theirs[kind]()  # warm-up, and the same numbers?
            dev = float((a.inputs - b[0]).abs().max())
            same_labels = bool(torch.equal(a.targets, b[1]))
            times = {"ours": [], "torchvision": []}
            for _ in range(args.repeats):
                for name, fn in (("ours", ours[kind]), ("torchvision", theirs[kind])):
                    t0 = time.perf_counter()
                    fn()
                    times[name].append(time.perf_counter() - t0)
            med = {k: statistics.median(v) for k, v in times.items()}
            rows.append((kind, len(a.targets), tuple(a.inputs.shape[1:]), med["ours"], med["torchvision"], dev, same_labels))
    print(f"# {platform.node()} {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"torchvision {tv.__version__}, 1 thread, fp32, median of {args.repeats}")
    print("| data set | samples | shape | ours s | torchvision s | torchvision / ours | max abs diff | labels equal |")
    print("|---|---|---|---|---|---|---|---|")
    for kind, n, shape, o, t, dev, same in rows:
        print(f"| {kind} | {n:,} | {shape} | {o:.2f} | {t:.2f} | {t / o:.1f}x | {dev:.1e} | {same} |")


if __name__ == "__main__":
    main()
