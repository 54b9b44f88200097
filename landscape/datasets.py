"""The common image data sets as full-batch tensors: read, subsampled by class, normalized.

`load_dataset(kind, root, ...)` reads a split from local files (`readers.py`),
keeps a seeded stratified subset when asked (before decoding or converting, so a
subset of a large set costs only its own size), checks that the result fits the
device's memory, and normalizes each channel with the data set's usual constants.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import readers
from .errors import DataError
from .memory import check_data_memory
from .subsets import stratified_indices, subset_indices  # noqa: F401  (stratified_indices: its former home)

KINDS: tuple[str, ...] = ("cifar10", "cifar100", "mnist", "fashion_mnist", "svhn", "image_folder")

# Per-channel (mean, std) of pixel values in [0, 1]: each set's training statistics, as the papers'
# code normalizes. CIFAR-10: Li et al.'s loss-landscape dataloader ([125.3, 123.0, 113.9] / 255,
# [63.0, 62.1, 66.7] / 255); image folders: the ImageNet constants torchvision's models expect.
NORMALIZATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "cifar10": ((125.3 / 255, 123.0 / 255, 113.9 / 255), (63.0 / 255, 62.1 / 255, 66.7 / 255)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "mnist": ((0.1307,), (0.3081,)),
    "fashion_mnist": ((0.2860,), (0.3530,)),
    "svhn": ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)),
    "image_folder": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}


@dataclass
class Loaded:
    inputs: torch.Tensor  # (N, C, H, W) float32
    targets: torch.Tensor  # (N,) int64
    classes: int | None  # the data set's class count (a subset may miss some); None: from the labels
    notes: list[str] = field(default_factory=list)


def subset_size(total: int, subset: int | None, fraction: float | None) -> int | None:
    """How many samples to keep (None: all); a subset larger than the data set is refused by `subset_indices`."""
    if subset is not None:
        return subset
    if fraction is not None:
        return min(total, max(1, int(round(fraction * total))))
    return None


def _channel_stats(kind: str, channels: int, mean, std) -> tuple[torch.Tensor, torch.Tensor]:
    m, s = (mean, std) if mean is not None else NORMALIZATION[kind]
    if len(m) != channels or len(s) != channels:
        raise DataError(f"data.mean and data.std need {channels} value(s), one per channel; got {len(m)} and {len(s)}")
    return torch.tensor(m, dtype=torch.float32).view(-1, 1, 1), torch.tensor(s, dtype=torch.float32).view(-1, 1, 1)


def load_dataset(
    kind: str,
    root: str | Path,
    split: str | None = "train",
    *,
    normalize: bool = True,
    mean: list[float] | None = None,
    std: list[float] | None = None,
    subset: int | None = None,
    subset_fraction: float | None = None,
    seed: int = 0,
    size: int | None = None,
) -> Loaded:
    """The split of data set `kind` under `root` as float32 tensors (see the module docstring)."""
    raw = readers.read(kind, root, split, size)
    what = f"{readers.TITLES[kind]} {split or ''}".strip()
    total = len(raw.labels)
    keep = subset_size(total, subset, subset_fraction)
    idx = subset_indices(total, keep, seed, raw.labels, what)  # the one subset rule: stratified, oversized refused
    idx = np.arange(total) if idx is None else idx
    check_data_memory(len(idx), raw.sample_shape, f"data {what}")
    x = torch.from_numpy(raw.take(idx)).to(torch.float32).div_(255)  # (n, C, H, W) in [0, 1]
    notes = [f"{what}: {len(idx):,} images {tuple(x.shape[1:])}, {raw.classes} classes, from {raw.source}"]
    if raw.class_names:
        shown = ", ".join(raw.class_names[:10]) + (", ..." if len(raw.class_names) > 10 else "")
        notes.append(f"class folders in label order: {shown}")
    if len(idx) < total:
        per_class = np.bincount(raw.labels[idx], minlength=raw.classes)
        notes.append(f"stratified subset of {keep:,} of {total:,} samples (seed {seed}): {per_class.min()}..{per_class.max()} per class")
    if normalize:
        m, s = _channel_stats(kind, x.shape[1], mean, std)
        x.sub_(m).div_(s)
        notes.append(f"normalized per channel: mean {tuple(round(float(v), 4) for v in m.flatten())}, "
                     f"std {tuple(round(float(v), 4) for v in s.flatten())}")
    y = torch.from_numpy(raw.labels[idx]).long()
    return Loaded(x, y, raw.classes, notes)
