"""Independent references for the curvature tests: dense Hessians, and models imported by path
('tests.hessian_reference:...')."""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def dense_hessian(model, state: dict, inputs, targets, loss="cross_entropy") -> np.ndarray:
    """float64 Hessian of the mean loss over the parameters, through torch.autograd.functional.hessian."""
    model = model.double().eval()
    model.load_state_dict({k: v.double() if v.is_floating_point() else v for k, v in state.items()})
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    flat = torch.cat([p.detach().reshape(-1) for _, p in model.named_parameters()])

    def f(w):
        parts = torch.split(w, [int(np.prod(s)) for s in shapes])
        out = torch.func.functional_call(model, {n: p.view(s) for n, p, s in zip(names, parts, shapes)}, (inputs.double(),))
        if loss == "cross_entropy":
            return F.cross_entropy(out, targets)
        return F.mse_loss(out, targets.double().reshape(out.shape))

    return torch.autograd.functional.hessian(f, flat, vectorize=True).numpy()


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
