"""Built-in data sets as full-batch tensors (inputs, targets).

Everything is generated or ships with a package: nothing is downloaded.
"""

from __future__ import annotations

import importlib
import os
import sys
from math import prod

import numpy as np
import torch

from .errors import DataError
from .memory import check_data_memory
from .subsets import subset_indices, uniform_indices
from .user_calls import call_factory, first_line, still_waiting


def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 8x8 digits: (1797, 1, 8, 8) in [0, 1], labels (1797,) int64."""
    from sklearn.datasets import load_digits  # ships with scikit-learn, offline

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0  # (N, 1, 8, 8)
    return x, torch.tensor(d.target, dtype=torch.int64)


def stratified_split(y: torch.Tensor, split: str, test_fraction: float, seed: int = 0) -> torch.Tensor:
    """Sorted indices of the `split` ("train" or "test") of a seeded split, stratified by class.

    Per class c with n_c samples, round(test_fraction * n_c) of them (a seeded permutation's first ones) are
    test samples, the rest training samples: both splits keep the class proportions, and together they are
    every sample exactly once.
    """
    g = torch.Generator().manual_seed(seed)
    test = []
    for c in torch.unique(y):  # sorted classes: the same draw every time
        idx = (y == c).nonzero()[:, 0]
        test.append(idx[torch.randperm(len(idx), generator=g)[: round(test_fraction * len(idx))]])
    mask = torch.zeros(len(y), dtype=torch.bool)
    mask[torch.cat(test)] = True
    return (mask if split == "test" else ~mask).nonzero()[:, 0]


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


def subsample_indices(n: int, size: int | None, seed: int = 0) -> torch.Tensor | None:
    """The sorted indices of a seeded subset of `size` of `n` samples; None for all of them (size None or >= n).
    For probes and batch-norm samples; a data spec's `subset` follows `subsets.subset_indices`."""
    if size is None or size >= n:
        return None
    return torch.from_numpy(uniform_indices(n, size, seed))


def subsample(x: torch.Tensor, y: torch.Tensor, size: int | None, seed: int = 0):
    """A seeded subset of `size` samples (all of them when size is None or >= N)."""
    idx = subsample_indices(len(x), size, seed)
    return (x, y) if idx is None else (x[idx], y[idx])


def import_object(path: str, error: type[Exception] = DataError, field: str = "data.factory"):
    """Resolve 'package.module:attribute' (the current directory is importable, as on the actors)."""
    module, sep, attr = str(path).partition(":")
    if not sep or not module or not attr:
        raise error(f"{field} {path!r} must look like 'package.module:function'")
    from .vision import prepare_torchvision

    prepare_torchvision()  # a factory importing transformers imports torchvision too
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)  # `landscape run` from a folder with the factory's module, as the actors see it
    try:
        with still_waiting(f"{field} {path!r} (importing {module!r})"):
            obj = importlib.import_module(module)
    except SystemExit as e:
        raise error(f"{field} {path!r}: importing {module!r} exited (sys.exit({e.code!r})); a factory's module must not exit when imported") from None
    except ImportError as e:
        raise error(f"{field} {path!r}: cannot import module {module!r} ({e}); is it in the current directory or on PYTHONPATH?") from None
    except Exception as e:  # the module itself raised on import
        raise error(f"{field} {path!r}: importing {module!r} raised {type(e).__name__}: {first_line(e)}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise error(f"{field} {path!r}: module {module!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise error(f"{field} {path!r} is a {type(obj).__name__}, not a function")
    return obj


_DATA_CONTRACT = "(inputs, targets): two arrays or tensors of equal length, or a map-style Dataset of (input, target) pairs"


def _describe(obj) -> str:
    if isinstance(obj, (tuple, list)):
        return f"a {type(obj).__name__} of {len(obj)} item(s)"
    if isinstance(obj, str):
        return f"the string {obj[:40]!r}"
    return f"a {type(obj).__name__}"


def _read_dataset(made, path: str, subset: int | None, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The items of a map-style Dataset (only those of the seeded subset), checked for count and memory first."""
    try:
        n = int(len(made))
    except Exception as e:
        raise DataError(f"data factory {path!r} returned a Dataset whose len() fails ({first_line(e)}); it must return {_DATA_CONTRACT}") from None
    if n == 0:
        raise DataError(f"data factory {path!r} returned an empty Dataset (0 samples)")
    if n > MAX_DATASET_ITEMS:
        raise DataError(
            f"data factory {path!r} returned a Dataset of {n:,} items, more than {MAX_DATASET_ITEMS:,}: every sample is "
            "read into memory, item by item; return a smaller Dataset (e.g. torch.utils.data.Subset) or (inputs, targets) tensors"
        )
    idx = subset_indices(n, subset, seed, _dataset_labels(made, n), f"data factory {path!r}")
    order = range(n) if idx is None else idx.tolist()
    try:
        with still_waiting(f"data factory {path!r} (reading {len(order):,} Dataset items)"):
            for k, i in enumerate(order):
                item = made[i]
                xi, yi = _tensor(item[0], "inputs", path), _tensor(item[1], "targets", path)
                if k == 0:
                    check_data_memory(len(order), tuple(xi.shape), f"data factory {path!r}", bytes_per_value=max(4, xi.element_size()))
                    x = torch.empty((len(order), *xi.shape), dtype=xi.dtype)
                    y = torch.empty((len(order), *yi.shape), dtype=yi.dtype)
                    first = i
                elif xi.shape != x.shape[1:] or yi.shape != y.shape[1:]:
                    raise DataError(f"data factory {path!r}: Dataset item {i} is an input of shape {tuple(xi.shape)} and a target "
                                    f"of {tuple(yi.shape)}, but item {first}'s are {tuple(x.shape[1:])} and {tuple(y.shape[1:])}; "
                                    "every item must have the same shapes")
                x[k], y[k] = xi, yi
    except DataError:
        raise
    except Exception as e:
        raise DataError(f"data factory {path!r} returned a Dataset whose items are not (input, target) pairs ({first_line(e)}); "
                        f"it must return {_DATA_CONTRACT}") from None
    return x, y


def _dataset_labels(made, n: int) -> np.ndarray | None:
    """A Dataset's class labels without reading its items (`targets`, as torchvision's data sets hold them), or None:
    its subset is then sampled uniformly."""
    try:
        labels = np.asarray(getattr(made, "targets", None))
    except Exception:
        return None
    return labels if labels.shape == (n,) and np.issubdtype(labels.dtype, np.integer) else None


def _tensor(v, what: str, path: str) -> torch.Tensor:
    try:
        return torch.as_tensor(v)
    except (TypeError, ValueError, RuntimeError) as e:
        raise DataError(f"data factory {path!r}: its {what} are not numeric arrays ({first_line(e)}); it must return {_DATA_CONTRACT}") from None


MAX_DATASET_ITEMS = 10_000_000  # a Dataset is read item by item through Python: more would take hours


def from_factory(path: str, kwargs: dict | None = None, subset: int | None = None, seed: int = 0
                 ) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Call a user's data factory: (inputs float32 or as integers, targets, notes about what was converted).

    A Dataset it returns is sized first (item count, then the bytes of the items to read, from the first one) and
    only the `subset` of its items that the subset rule keeps is read (stratified when it holds `targets`)."""
    fn = import_object(path)
    made = call_factory(fn, kwargs or {}, f"data factory {path!r}", DataError, _DATA_CONTRACT, "data.kwargs")
    notes = []
    if isinstance(made, (tuple, list)) and len(made) == 2 and not isinstance(made, str):
        x, y = (_tensor(v, w, path) for v, w in zip(made, ("inputs", "targets")))
    elif hasattr(made, "__getitem__") and hasattr(made, "__len__") and not isinstance(made, (str, bytes, tuple, list, dict)):
        x, y = _read_dataset(made, path, subset, seed)
    else:
        raise DataError(f"data factory {path!r} returned {_describe(made)}; it must return {_DATA_CONTRACT}")
    if x.dim() == 0 or y.dim() == 0:
        raise DataError(f"data factory {path!r} returned a single number, not one row per sample; it must return {_DATA_CONTRACT}")
    if len(x) == 0:
        raise DataError(f"data factory {path!r} returned 0 samples; it must return at least one")
    if len(x) != len(y):
        raise DataError(f"data factory {path!r}: {len(x)} inputs but {len(y)} targets; they must be of equal length")
    if x.dtype == torch.bool or x.is_complex():
        raise DataError(f"data factory {path!r}: inputs of dtype {x.dtype} cannot be fed to a model; return real numbers")
    if x.is_floating_point():
        if x.dtype != torch.float32:
            notes.append(f"inputs cast from {str(x.dtype).removeprefix('torch.')} to float32")
        x = x.float()
    # Integer inputs keep their dtype here: token ids stay integer if the model reads them (adapters.fit_input_dtype).
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise DataError(f"data factory {path!r}: the inputs hold {bad} NaN or inf value(s); clean the data")
    if y.is_floating_point():
        if y.dtype != torch.float32:
            notes.append(f"targets cast from {str(y.dtype).removeprefix('torch.')} to float32")
        y = y.float()
        if not bool(torch.isfinite(y).all()):
            raise DataError(f"data factory {path!r}: the targets hold NaN or inf values; clean the data")
    elif y.dtype == torch.bool or y.is_complex():
        raise DataError(f"data factory {path!r}: targets of dtype {y.dtype}; return integer labels or float targets")
    else:
        y = y.long()
    return x, y, notes


def num_classes(y: torch.Tensor) -> int:
    """Output width the targets call for: class count, or regression width."""
    if y.is_floating_point():
        return 1 if y.dim() == 1 else y.shape[1]
    return int(y.max().item()) + 1
