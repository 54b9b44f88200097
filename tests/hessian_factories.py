"""Models for the curvature tests, imported by path ('tests.hessian_factories:...')."""

import torch
from torch import nn


class SqrtShift(nn.Module):
    """Linear(4, 3) plus sqrt(a) with a = 0: the loss is finite, its derivatives in `a` are not (NaN H v)."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 3)
        self.a = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return self.linear(x.flatten(1)) + torch.sqrt(self.a)  # (N, 3)


def sqrt_shift() -> nn.Module:
    return SqrtShift()


def bn_net() -> nn.Module:
    """A small conv net with BatchNorm: (N, 3, 6, 6) -> (N, 4)."""
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 4))
