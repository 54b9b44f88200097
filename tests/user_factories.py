"""A user's own model and data, imported by path ('tests.user_factories:...') in the tests."""

import torch
from torch import nn


def make_model(hidden: int = 5) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(4, hidden), nn.Tanh(), nn.Linear(hidden, 3))


def make_data(n: int = 30):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    return x, (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
