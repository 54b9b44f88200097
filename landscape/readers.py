"""On-disk formats of the common image data sets, read directly (never downloaded).

Each reader finds a split's files under `root` in the layouts torchvision's
dataset classes write (and the unpacked original archives), and returns a
`RawSet`: the labels, and a `take(indices)` giving those samples as uint8
(n, C, H, W). Reading the files directly is simpler and faster than going through
torchvision's classes: no PIL image per sample for the array formats, no md5 pass
over the archive, and image folders decode only the samples a subset keeps.

- CIFAR-10/100: the pickled "python version" batches, unpickled by a restricted
  unpickler that admits numpy arrays and nothing else (a batch is a pickle: a
  tampered one must not run code).
- MNIST, Fashion-MNIST: idx files, gzipped or not.
- SVHN: the cropped-digits .mat files (scipy.io), label 10 meaning digit 0.
- Image folders: one folder per class (sorted names are the labels, as torchvision's
  ImageFolder), decoded with Pillow, optionally resized and centre-cropped.
"""

from __future__ import annotations

import gzip
import importlib
import os
import pickle
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import DataError


@dataclass
class RawSet:
    """A split as read from disk: labels now, images on demand (uint8)."""

    labels: np.ndarray  # (N,) int64
    classes: int
    sample_shape: tuple[int, int, int]  # (C, H, W)
    take: Callable[[np.ndarray], np.ndarray]  # indices (n,) -> (n, C, H, W) uint8
    source: str  # the files read, for notes
    class_names: tuple[str, ...] = field(default_factory=tuple)


def _missing(kind: str, root: Path, expected: str, looked: list[Path]) -> DataError:
    where = ", ".join(str(p) for p in dict.fromkeys(looked))
    return DataError(
        f"data.root {str(root)!r} does not hold the {TITLES[kind]} files: expected {expected} (looked in {where}); "
        f"get them from {SOURCES[kind]} and unpack them there; nothing is downloaded at run time"
    )


def _no_root(kind: str, root: Path) -> DataError:
    what = "is not a folder" if root.exists() else "does not exist"
    return DataError(f"data.root {str(root)!r} {what}; it must be the folder holding the {TITLES[kind]} files ({SOURCES[kind]})")


TITLES = {
    "cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "mnist": "MNIST", "fashion_mnist": "Fashion-MNIST",
    "svhn": "SVHN", "image_folder": "image folder",
}
SOURCES = {
    "cifar10": "https://www.cs.toronto.edu/~kriz/cifar.html (cifar-10-python.tar.gz, the python version; "
    "or torchvision.datasets.CIFAR10(root, download=True) on a machine with internet)",
    "cifar100": "https://www.cs.toronto.edu/~kriz/cifar.html (cifar-100-python.tar.gz, the python version; "
    "or torchvision.datasets.CIFAR100(root, download=True) on a machine with internet)",
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/ (the four idx .gz files; "
    "or torchvision.datasets.MNIST(root, download=True) on a machine with internet)",
    "fashion_mnist": "https://github.com/zalandoresearch/fashion-mnist (the four idx .gz files; "
    "or torchvision.datasets.FashionMNIST(root, download=True) on a machine with internet)",
    "svhn": "http://ufldl.stanford.edu/housenumbers/ (format 2, cropped digits: train_32x32.mat, test_32x32.mat; "
    "or torchvision.datasets.SVHN(root, split, download=True) on a machine with internet)",
    "image_folder": "your own images, one folder per class (e.g. Imagenette: https://github.com/fastai/imagenette)",
}


def _array_take(images: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    return lambda idx: images[idx]


# -- CIFAR ---------------------------------------------------------------------

CIFAR = {
    "cifar10": ("cifar-10-batches-py", {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}, "labels", 10),
    "cifar100": ("cifar-100-python", {"train": ["train"], "test": ["test"]}, "fine_labels", 100),
}


def _numpy_reconstruct():
    for name in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            return importlib.import_module(name)._reconstruct
        except (ImportError, AttributeError):
            continue
    raise ImportError("numpy's _reconstruct")  # pragma: no cover


class _ArraysOnly(pickle.Unpickler):
    """Unpickles dicts, lists, strings, numbers and numpy arrays; refuses every other global."""

    def find_class(self, module: str, name: str):
        if name == "_reconstruct" and module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            return _numpy_reconstruct()
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        if (module, name) == ("_codecs", "encode"):  # bytes in protocol-2 pickles
            import _codecs

            return _codecs.encode
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a CIFAR batch holds only arrays and lists")


def _unpickle_batch(path: Path, kind: str) -> dict:
    try:
        with open(path, "rb") as f:
            d = _ArraysOnly(f, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError, IndexError) as e:
        raise DataError(f"{path} is not a {TITLES[kind]} python batch ({type(e).__name__}: {str(e)[:120]}); expected the "
                        f"pickled batches of {SOURCES[kind]}") from None
    if not isinstance(d, dict):
        raise DataError(f"{path} is not a {TITLES[kind]} python batch (it holds a {type(d).__name__}, not a dict)")
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in d.items()}


def _cifar_base(kind: str, root: Path, split: str) -> Path:
    folder, files, _, _ = CIFAR[kind]
    candidates = [root / folder, root]
    base = next((c for c in candidates if all((c / f).is_file() for f in files[split])), None)
    if base is None:
        expected = f"{folder}/{' '.join(files[split])}"
        raise _missing(kind, root, expected, candidates)
    return base


def read_cifar(kind: str, root: Path, split: str) -> RawSet:
    _, files, label_key, classes = CIFAR[kind]
    base = _cifar_base(kind, root, split)
    images, labels = [], []
    for name in files[split]:
        d = _unpickle_batch(base / name, kind)
        if "data" not in d or label_key not in d:
            raise DataError(f"{base / name} is not a {TITLES[kind]} batch: it has no 'data' and {label_key!r} entries "
                            f"(it has {', '.join(map(str, list(d)[:5]))})")
        data, lab = np.asarray(d["data"]), _labels_of(d[label_key], base / name, label_key)
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(lab) != len(data):
            raise DataError(f"{base / name}: expected 'data' uint8 of shape (N, 3072) and N labels, got {data.dtype} "
                            f"{data.shape} and {len(lab)} labels")
        images.append(data.reshape(-1, 3, 32, 32))  # rows are R(1024) G(1024) B(1024), each 32x32 row-major
        labels.append(lab.astype(np.int64))
    y = np.concatenate(labels)
    _check_labels(y, classes, base, kind)
    x = np.concatenate(images) if len(images) > 1 else images[0]
    return RawSet(y, classes, (3, 32, 32), _array_take(x), f"{base}/{{{','.join(files[split])}}}")


def _labels_of(raw, path: Path, key: str) -> np.ndarray:
    """A batch's labels as a 1-D integer array; DataError naming the file for strings, floats, nesting."""
    try:
        lab = np.asarray(raw)
    except ValueError as e:  # a ragged nesting
        raise DataError(f"{path}: its {key!r} are not a list of integer class labels ({str(e)[:100]})") from None
    if lab.ndim != 1 or not (np.issubdtype(lab.dtype, np.integer) or np.issubdtype(lab.dtype, np.bool_)):
        raise DataError(f"{path}: its {key!r} must be a flat list of integer class labels, got {lab.dtype} of shape "
                        f"{lab.shape}; is this a CIFAR python batch?")
    return lab


def _check_labels(y: np.ndarray, classes: int, where, kind: str) -> None:
    if len(y) and (y.min() < 0 or y.max() >= classes):
        raise DataError(f"{where}: labels run from {y.min()} to {y.max()}, but {TITLES[kind]} has classes 0..{classes - 1}; "
                        "is this the right data set?")


# -- MNIST and Fashion-MNIST (idx files) -----------------------------------------------

IDX = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"), "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
IDX_FOLDERS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}  # torchvision's root/<class name>/raw


def read_idx(path: Path) -> np.ndarray:
    """An idx file (http://yann.lecun.com/exdb/mnist/): magic 0 0 type ndim, big-endian dims, then the values."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            buf = f.read()
    except (OSError, EOFError, zlib.error) as e:  # zlib.error: a corrupt .gz
        raise DataError(f"{path}: cannot read it ({type(e).__name__}: {e}); a truncated download?") from None
    if len(buf) < 4 or buf[0] != 0 or buf[1] != 0 or buf[2] != 0x08 or not 1 <= buf[3] <= 4:
        raise DataError(f"{path} is not an idx file of unsigned bytes (its first bytes are {buf[:4].hex() or 'missing'}, "
                        "expected 000008 then the number of dimensions)")
    ndim = buf[3]
    dims = tuple(int.from_bytes(buf[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    count = int(np.prod(dims))
    if len(buf) != 4 + 4 * ndim + count:
        raise DataError(f"{path}: the header says {dims} values ({count:,} bytes) but the file holds "
                        f"{len(buf) - 4 - 4 * ndim:,}; a truncated or damaged file")
    return np.frombuffer(buf, np.uint8, count, 4 + 4 * ndim).reshape(dims)


def _find_file(folders: list[Path], name: str) -> Path | None:
    for folder in folders:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _mnist_paths(kind: str, root: Path, split: str) -> list[Path]:
    sub = IDX_FOLDERS[kind]
    folders = [root / sub / "raw", root / sub, root / "raw", root]
    names = IDX[split]
    paths = [_find_file(folders, n) for n in names]
    if None in paths:
        raise _missing(kind, root, f"{' and '.join(n + '[.gz]' for n in names)}", folders)
    return paths


def read_mnist(kind: str, root: Path, split: str) -> RawSet:
    paths = _mnist_paths(kind, root, split)
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f"{paths[0]} and {paths[1]}: expected images (N, H, W) and N labels, got {images.shape} and "
                        f"{labels.shape}; are these the {split} images and labels of {TITLES[kind]}?")
    y = labels.astype(np.int64)
    _check_labels(y, 10, paths[1], kind)
    x = images[:, None]  # (N, 1, H, W)
    return RawSet(y, 10, tuple(x.shape[1:]), _array_take(x), f"{paths[0]}, {paths[1]}")


# -- SVHN (.mat) ------------------------------------------------------------------

SVHN_FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat", "extra": "extra_32x32.mat"}


def _svhn_path(kind: str, root: Path, split: str) -> Path:
    name = SVHN_FILES[split]
    folders = [root, root / "svhn", root / "SVHN"]
    path = next((f / name for f in folders if (f / name).is_file()), None)
    if path is None:
        raise _missing(kind, root, name, folders)
    return path


def read_svhn(kind: str, root: Path, split: str) -> RawSet:
    name = SVHN_FILES[split]
    path = _svhn_path(kind, root, split)
    import scipy.io  # comes with scikit-learn
    from scipy.io.matlab import MatReadError  # an empty or truncated .mat

    try:
        mat = scipy.io.loadmat(str(path), variable_names=["X", "y"])
    except (ValueError, NotImplementedError, OSError, TypeError, MatReadError) as e:
        raise DataError(f"{path} is not a MATLAB file scipy can read ({type(e).__name__}: {str(e)[:120]}); expected SVHN's "
                        f"{name} (format 2)") from None
    if "X" not in mat or "y" not in mat:
        raise DataError(f"{path} has no 'X' and 'y' variables (it has {', '.join(k for k in mat if not k.startswith('__'))}); "
                        f"expected SVHN's {name}")
    X, labels = np.asarray(mat["X"]), np.asarray(mat["y"]).reshape(-1)
    if X.ndim != 4 or X.shape[2] != 3 or X.shape[3] != len(labels):
        raise DataError(f"{path}: expected X of shape (32, 32, 3, N) and N labels, got {X.shape} and {len(labels)}")
    y = labels.astype(np.int64)
    y[y == 10] = 0  # SVHN writes digit 0 as label 10
    _check_labels(y, 10, path, kind)
    x = np.ascontiguousarray(X.transpose(3, 2, 0, 1)).astype(np.uint8, copy=False)  # (H, W, C, N) -> (N, C, H, W)
    return RawSet(y, 10, tuple(x.shape[1:]), _array_take(x), str(path))


# -- image folders ------------------------------------------------------------------

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")  # torchvision's list
SPLIT_FOLDERS = {"train": ("train",), "test": ("val", "test")}  # Imagenette: train/ and val/


def _image_files(folder: Path) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames.sort()
        found += [Path(dirpath) / f for f in sorted(filenames) if f.lower().endswith(IMG_EXTENSIONS)]
    return found


def _resize_crop(img, size: int):
    """Shorter side to `size` (bilinear), then the centre size x size: torchvision's Resize(size) + CenterCrop(size)."""
    from PIL import Image

    w, h = img.size
    if (w <= h and w == size) or (h <= w and h == size):
        resized = img
    elif w <= h:
        resized = img.resize((size, int(size * h / w)), Image.BILINEAR)
    else:
        resized = img.resize((int(size * w / h), size), Image.BILINEAR)
    w, h = resized.size
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return resized.crop((left, top, left + size, top + size))


def _decode(path: Path, size: int | None) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
    except Image.DecompressionBombError as e:  # Pillow's guard: far more pixels than an image of a data set
        raise DataError(f"{path} is too large to decode ({str(e).split(' could be')[0].rstrip(',')}); shrink or remove it") from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise DataError(f"{path} cannot be read as an image ({type(e).__name__}: {str(e)[:120]}); remove or replace it") from None
    if size is not None:
        img = _resize_crop(img, size)
    return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1)  # (H, W, 3) -> (3, H, W)


def _image_folder(root: Path, split: str | None) -> tuple[Path, list[str], dict[str, list[Path]]]:
    """(the folder of the class folders, the class names sorted, each class's image files)."""
    base = root
    if split is not None:
        subs = [root / s for s in SPLIT_FOLDERS[split]]
        base = next((s for s in subs if s.is_dir()), None)
        if base is None:
            raise DataError(f"data.split {split!r}: {root} has no {' or '.join(s.name + '/' for s in subs)} folder; "
                            "leave split out when root itself holds the class folders")
    classes = sorted(e.name for e in os.scandir(base) if e.is_dir())
    return base, classes, {c: _image_files(base / c) for c in classes}


def read_image_folder(kind: str, root: Path, split: str | None, size: int | None = None) -> RawSet:
    base, classes, files = _image_folder(root, split)
    labels = [i for i, c in enumerate(classes) for _ in files[c]]
    paths = [p for c in classes for p in files[c]]
    if not paths:
        loose = _image_files(base) if not classes else []
        hint = (f"it holds {len(loose)} image(s) but no class folders: put each class's images in a folder of its own "
                f"({base}/<class>/*.png)") if loose else f"no {'/'.join(IMG_EXTENSIONS)} files in any class folder"
        raise DataError(f"image_folder {str(base)!r} holds no images: {hint}")
    empty = [c for c in classes if not files[c]]
    if empty:
        raise DataError(f"image_folder {str(base)!r}: the class folder(s) {', '.join(map(repr, empty[:5]))} hold no images; "
                        "remove them or add images")
    if len(classes) < 2:
        raise DataError(f"image_folder {str(base)!r} holds one class folder ({classes[0]!r}); a classifier needs at least two: "
                        "put each class's images in a folder of its own under root")
    first = _decode(paths[0], size)

    def take(idx: np.ndarray) -> np.ndarray:
        chosen = [paths[i] for i in idx]
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:  # Pillow decodes outside the GIL
            decoded = list(pool.map(lambda p: _decode(p, size), chosen))
        for p, arr in zip(chosen, decoded):
            if arr.shape != first.shape:
                raise DataError(f"image_folder: {p} is {arr.shape[2]}x{arr.shape[1]} but {paths[0]} is "
                                f"{first.shape[2]}x{first.shape[1]}; set data.size: N to resize and centre-crop every image to NxN")
        return np.stack(decoded) if decoded else np.empty((0, *first.shape), np.uint8)

    y = np.asarray(labels, dtype=np.int64)
    return RawSet(y, len(classes), tuple(first.shape), take, f"{base} ({len(paths):,} images)", tuple(classes))


def files_read(kind: str, root: str | Path, split: str | None) -> tuple[Path, list[Path]]:
    """(the folder, the files) `read` reads for this split, found as it finds them (result provenance hashes them)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise _no_root(kind, root)
    if kind in CIFAR:
        base = _cifar_base(kind, root, split)
        return base, [base / f for f in CIFAR[kind][1][split]]
    if kind in IDX_FOLDERS:
        return root, _mnist_paths(kind, root, split)
    if kind == "svhn":
        return root, [_svhn_path(kind, root, split)]
    base, classes, files = _image_folder(root, split)
    return base, [p for c in classes for p in files[c]]


def read(kind: str, root: str | Path, split: str | None, size: int | None = None) -> RawSet:
    """The split `split` of data set `kind` under `root` (DataError with one line saying what is missing)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise _no_root(kind, root)
    if kind in CIFAR:
        return read_cifar(kind, root, split)
    if kind in IDX_FOLDERS:
        return read_mnist(kind, root, split)
    if kind == "svhn":
        return read_svhn(kind, root, split)
    if kind == "image_folder":
        return read_image_folder(kind, root, split, size)
    raise ValueError(f"unknown data set kind {kind!r}")  # pragma: no cover - the spec's union forbids it
