"""Models for the gradient-health tests, imported by path ('tests.health_factories:...')."""

from __future__ import annotations

import os
import signal

import torch
from torch import nn

from landscape.models import build_model


class BiasOnly(nn.Module):
    """No weight matrix at all: the first 10 inputs plus a learned shift."""

    def __init__(self):
        super().__init__()
        self.shift = nn.Parameter(torch.zeros(10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)[:, :10] + self.shift


def bias_only() -> nn.Module:
    return BiasOnly()


class DyingOnce(nn.Module):
    """A deep_mlp (same weights as `kind: deep_mlp` with the same seed) whose process SIGKILLs itself once.

    The first process other than the driver (`driver_pid`) to reach its `die_at`-th
    forward pass creates `marker` (atomically: only one process ever dies) and
    kills itself, in the middle of a learning-rate run.
    """

    def __init__(self, marker: str, driver_pid: int, die_at: int = 6, **options):
        super().__init__()
        self.inner = build_model("deep_mlp", (1, 8, 8), 10, **options)
        self.marker, self.driver_pid, self.die_at, self.calls = marker, driver_pid, die_at, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if os.getpid() != self.driver_pid and self.calls == self.die_at:
            try:
                os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                pass
            else:
                os.kill(os.getpid(), signal.SIGKILL)
        return self.inner(x)


def dying_once(**kw) -> nn.Module:
    return DyingOnce(**kw)
