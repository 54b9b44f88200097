"""The one `subset` rule of every data kind: which samples a seeded subset keeps.

Class labels (1-D integer targets) are sampled stratified: each class keeps its
share within one sample (`stratified_indices`). Other targets (regression values,
token blocks) are sampled uniformly (`uniform_indices`). A subset larger than the
data is refused in one line naming the data's size; a subset of exactly the data's
size keeps every sample. (Rule 2 in run identities: jobs/specs/subset_rule.py.)
"""

from __future__ import annotations

import numpy as np
import torch

from .errors import DataError


def is_class_labels(labels) -> bool:
    """1-D integer targets: one class label per sample (not regression values, not token blocks)."""
    if labels is None:
        return False
    if isinstance(labels, torch.Tensor):
        return labels.ndim == 1 and not (labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool)
    a = np.asarray(labels)
    return a.ndim == 1 and np.issubdtype(a.dtype, np.integer)


def stratified_indices(labels: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
    """`size` sorted indices keeping each class's share of `labels` (largest remainders), seeded.

    Class c gets floor(size * n_c / N) samples, and the samples left over go one each
    to the classes with the largest fractional parts (ties to the lower class index),
    so every class is within one sample of its exact share.
    """
    n = len(labels)
    if not 0 < size <= n:
        raise ValueError(f"size {size} must be in 1..{n}")
    if size == n:
        return np.arange(n)
    classes, counts = np.unique(labels, return_counts=True)
    exact = size * counts / n
    take = np.floor(exact).astype(np.int64)
    short = size - int(take.sum())
    order = np.lexsort((np.arange(len(classes)), -(exact - take)))  # largest remainder first, then class index
    take[order[:short]] += 1
    g = torch.Generator().manual_seed(seed)
    chosen = []
    for c, k in zip(classes, take):
        members = np.flatnonzero(labels == c)
        pick = torch.randperm(len(members), generator=g)[: int(k)].numpy()
        chosen.append(members[pick])
    return np.sort(np.concatenate(chosen))


def uniform_indices(n: int, size: int, seed: int = 0) -> np.ndarray:
    """`size` sorted indices of a seeded permutation of `n` (all of them, in order, when size >= n)."""
    if size >= n:
        return np.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:size].sort()[0].numpy()


def subset_indices(n: int, size: int | None, seed: int = 0, labels=None, what: str = "the data") -> np.ndarray | None:
    """The sorted indices a data spec's `subset` of `size` keeps of `n` samples (None: subset not set, all of them).

    Stratified by class when `labels` are class labels, else uniform; DataError, in one line naming the
    data's size, when `size` is larger than `n`.
    """
    if size is None:
        return None
    if size > n:
        raise DataError(f"data.subset {size:,} is larger than {what} ({n:,} samples); use at most {n:,}")
    if is_class_labels(labels):
        return stratified_indices(np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels), size, seed)
    return uniform_indices(n, size, seed)


def take_subset(x: torch.Tensor, y: torch.Tensor, size: int | None, seed: int = 0, what: str = "the data"):
    """(inputs, targets) of the data spec's `subset` rule (`subset_indices`)."""
    idx = subset_indices(len(x), size, seed, y, what)
    if idx is None:
        return x, y
    t = torch.from_numpy(idx)
    return x[t], y[t]
