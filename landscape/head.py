"""The class-major output layer: the model's last Linear computed as W @ x^T on CPU.

On this CPU, MKL multiplies (n, 64) @ (64, 10) 2.3x slower than (10, 64) @ (64, n):
a narrow output is its weak shape. When the model's output is the output of a
plain Linear called once, the evaluator (CPU, one point per pass) swaps it for
`ClassMajorLinear`, which returns the same (n, C) logits as a transposed view of a
(C, n) product. The loss then reduces over classes along the contiguous sample
axis without a copy (metrics.py). Same values up to fp32 rounding of the sums.
"""

from __future__ import annotations

import torch
from torch import nn

from .shortcut import _owns_state


@torch.no_grad()
def output_layer(model: nn.Module, sample: torch.Tensor) -> str | None:
    """Name of the Linear whose output is the model's output (called once, last), else None."""
    calls: list[tuple[str, object]] = []
    hooks = [
        m.register_forward_hook(lambda mod, args, out, name=name: calls.append((name, out)))
        for name, m in model.named_modules()
        if _owns_state(m) and name
    ]
    try:
        out = model(sample)
    finally:
        for h in hooks:
            h.remove()
    if not calls:
        return None
    name, last = calls[-1]
    if last is not out or out.dim() != 2 or sum(n == name for n, _ in calls) != 1:
        return None
    return name if type(model.get_submodule(name)) is nn.Linear else None


class ClassMajorLinear(nn.Module):
    """A Linear whose (n, C) output is laid out class-major: (W @ x^T + b)^T, a view."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.weight = linear.weight
        self.bias = linear.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1])  # (n, F)
        if self.bias is None:
            out = torch.mm(self.weight, flat.t())  # (C, n)
        else:
            out = torch.addmm(self.bias[:, None], self.weight, flat.t())  # (C, n)
        return out.t().reshape(*x.shape[:-1], -1) if x.dim() != 2 else out.t()
