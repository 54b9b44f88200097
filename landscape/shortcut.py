"""The exact first-layer shortcut.

If the first layer that touches the model's state is linear in its parameters
(Linear, Conv), its output on fixed data at w0 + a*d1 + b*d2 is
Z0 + a*Z1 + b*Z2, with Z0 = layer(x; w0) and Zi = layer(x; di) (the bias
moves the same way). Z0..ZD are computed once per actor and data chunk; every
grid point then starts from a weighted sum instead of a convolution or matmul.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call

# Exact types: a subclass may override forward() with something not linear.
LINEAR_IN_PARAMS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


class _Stop(Exception):
    """Raised by a hook to skip the rest of a forward pass."""


def _owns_state(m: nn.Module) -> bool:
    return any(True for _ in m.parameters(recurse=False)) or any(
        b.is_floating_point() for b in m.buffers(recurse=False)
    )


@torch.no_grad()
def first_layer(model: nn.Module, sample: torch.Tensor) -> str | None:
    """Name of the first state-owning module the forward pass calls, if the shortcut is exact for it.

    None when that module is not a plain Linear/Conv, or is called more than once.
    """
    calls: list[str] = []
    hooks = [
        m.register_forward_pre_hook(lambda mod, args, name=name: calls.append(name))
        for name, m in model.named_modules()
        if _owns_state(m)
    ]
    try:
        model(sample)
    finally:
        for h in hooks:
            h.remove()
    if not calls or calls.count(calls[0]) != 1 or calls[0] == "":
        return None
    return calls[0] if type(model.get_submodule(calls[0])) in LINEAR_IN_PARAMS else None


@torch.no_grad()
def layer_input(model: nn.Module, name: str, x: torch.Tensor) -> torch.Tensor:
    """What the module `name` receives when the model runs on `x` (the rest is skipped)."""
    seen: dict[str, torch.Tensor] = {}

    def grab(mod, args):
        seen["x"] = args[0]
        raise _Stop

    hook = model.get_submodule(name).register_forward_pre_hook(grab)
    try:
        model(x)
    except _Stop:
        pass
    finally:
        hook.remove()
    return seen["x"]


@torch.no_grad()
def layer_basis(layer: nn.Module, x: torch.Tensor, states: list[dict[str, torch.Tensor]]) -> list[torch.Tensor]:
    """The layer's fp32 outputs on `x`, one per parameter set (origin, then each direction).

    A list, not a stacked tensor, so each keeps the memory format (channels-last) the layer gave it.
    """
    return [functional_call(layer, st, (x,)).float() for st in states]


class PrecomputedLayer(nn.Module):
    """Stands in for the first layer: Z0 + sum_i coef[i] * Z_{i+1} on the current data chunk.

    `coef` is a buffer so that functional_call (and vmap over it) supplies each
    grid point's coordinates; `basis` is set by the evaluator per chunk.
    The sum is formed in fp32 and cast to the compute dtype afterwards, so bf16
    scans do not round the coordinates themselves to 8 bits.
    """

    def __init__(self, dims: int, dtype: torch.dtype):
        super().__init__()
        self.register_buffer("coef", torch.zeros(dims), persistent=False)
        self.dtype = dtype
        self.basis: list[torch.Tensor] = []  # dims + 1 tensors (n, ...) fp32

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.basis[0]
        for i in range(len(self.basis) - 1):
            out = torch.addcmul(out, self.basis[i + 1], self.coef[i])
        return out.to(self.dtype)


def swap_module(model: nn.Module, name: str, new: nn.Module) -> nn.Module:
    """Replace the submodule `name` in place; returns the old one."""
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    old = getattr(parent, child)
    setattr(parent, child, new)
    return old
