"""Built-in data sets as full-batch tensors (inputs, targets).

Everything is generated or ships with a package: nothing is downloaded.
"""

from __future__ import annotations

import importlib
from math import prod

import torch

from .errors import DataError


def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 8x8 digits: (1797, 1, 8, 8) in [0, 1], labels (1797,) int64."""
    from sklearn.datasets import load_digits  # ships with scikit-learn, offline

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0  # (N, 1, 8, 8)
    return x, torch.tensor(d.target, dtype=torch.int64)


def synthetic(
    n: int, shape: tuple[int, ...], classes: int, seed: int = 0, task: str = "classification"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded Gaussian inputs of `shape`; targets from a fixed random linear teacher.

    classification: labels = argmax of the teacher's outputs (learnable, balanced-ish);
    regression: targets = teacher outputs plus small noise, shape (n, classes).
    """
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((n, *shape), generator=g)  # (N, *shape)
    teacher = torch.randn(prod(shape), classes, generator=g) / prod(shape) ** 0.5
    out = x.reshape(n, -1) @ teacher  # (N, classes)
    if task == "regression":
        return x, out + 0.1 * torch.randn(out.shape, generator=g)
    return x, out.argmax(dim=1)


def subsample(x: torch.Tensor, y: torch.Tensor, size: int | None, seed: int = 0):
    """A seeded subset of `size` samples (all of them when size is None or >= N)."""
    if size is None or size >= len(x):
        return x, y
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:size]
    idx, _ = idx.sort()
    return x[idx], y[idx]


def import_object(path: str):
    """Resolve 'package.module:attribute'."""
    module, sep, attr = path.partition(":")
    if not sep or not module or not attr:
        raise DataError(f"import path {path!r} must look like 'package.module:function'")
    try:
        obj = importlib.import_module(module)
    except ImportError as e:
        raise DataError(f"cannot import module {module!r} of {path!r}: {e}; is it on PYTHONPATH?") from e
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise DataError(f"module {module!r} has no attribute {attr!r} (from {path!r})")
        obj = getattr(obj, part)
    return obj


def from_factory(path: str, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """Call a user's data factory; it returns (inputs, targets) or a map-style Dataset."""
    made = import_object(path)(**kwargs)
    if isinstance(made, (tuple, list)) and len(made) == 2:
        x, y = made
    elif hasattr(made, "__getitem__") and hasattr(made, "__len__"):
        pairs = [made[i] for i in range(len(made))]
        x = torch.stack([torch.as_tensor(p[0]) for p in pairs])
        y = torch.stack([torch.as_tensor(p[1]) for p in pairs])
    else:
        raise DataError(f"data factory {path!r} must return (inputs, targets) or a Dataset, got {type(made).__name__}")
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    if not x.is_floating_point():
        x = x.float()
    if len(x) != len(y):
        raise DataError(f"data factory {path!r}: {len(x)} inputs but {len(y)} targets")
    return x, y


def num_classes(y: torch.Tensor) -> int:
    """Output width the targets call for: class count, or regression width."""
    if y.is_floating_point():
        return 1 if y.dim() == 1 else y.shape[1]
    return int(y.max().item()) + 1
