"""User factories that misbehave, for the bad-input table (tests/test_bad_inputs.py)."""

import numpy as np
import torch
from torch import nn


def model_three_outputs() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(4, 3))


def model_raises() -> nn.Module:
    raise RuntimeError("no GPU here")


def model_returns_int():
    return 7


def data_ok(n: int = 20):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 4, generator=g), torch.arange(n) % 3


def data_raises():
    raise ValueError("the file is gone")


def data_three():
    x, y = data_ok()
    return x, y, y


def data_string():
    return "inputs.csv"


def data_none():
    return None


def data_empty():
    return torch.zeros(0, 4), torch.zeros(0, dtype=torch.long)


def data_mismatch():
    x, y = data_ok()
    return x, y[:5]


def data_words():
    return [["a", "b"], ["c", "d"]], [0, 1]


def data_nan():
    x, y = data_ok()
    x[3, 1] = float("nan")
    return x, y


def data_labels_too_big():
    x, y = data_ok()
    return x, y + 3  # the 3-output model cannot predict labels 3..5


def data_labels_negative():
    x, y = data_ok()
    return x, y - 1


def data_float_labels():
    x, _ = data_ok()
    return x, torch.rand(len(x))


class _Empty(torch.utils.data.Dataset):
    def __len__(self):
        return 0

    def __getitem__(self, i):
        raise IndexError(i)


def data_empty_dataset():
    return _Empty()


def data_float64():
    x, y = data_ok()
    return np.asarray(x, dtype=np.float64), np.asarray(y)


class _Huge(torch.utils.data.Dataset):
    """10^9 items of 64 values: 256 GB if read."""

    def __len__(self):
        return 10**9

    def __getitem__(self, i):
        return torch.zeros(64), 0


def data_huge_dataset():
    return _Huge()


class _Wide(torch.utils.data.Dataset):
    """A few items whose inputs are far too large for any machine's memory (checked before they are read)."""

    def __len__(self):
        return 1000

    def __getitem__(self, i):
        return torch.zeros(1).expand(10**8), 0  # a view: 400 MB each if copied, 400 GB for all


def data_wide_dataset():
    return _Wide()


class _Ragged(torch.utils.data.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        return torch.zeros(4 if i < 2 else 5), 0


def data_ragged_dataset():
    return _Ragged()


def model_exits():
    import sys

    sys.exit(0)


def model_parses_argv():
    """A factory written as a script: it parses sys.argv, which holds landscape's own arguments."""
    import argparse

    p = argparse.ArgumentParser(prog="train_my_model")
    p.add_argument("--width", type=int, default=8)
    p.parse_args()
    return nn.Linear(4, 3)


def data_exits():
    raise SystemExit("no data today")


def model_sleeps(seconds: float = 2.5) -> nn.Module:
    import time

    time.sleep(seconds)
    return model_three_outputs()
