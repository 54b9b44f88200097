"""Blocks of a network for curvature: the Hessian restricted to a group of parameter tensors.

The Hessian of a block B is the diagonal block H_BB of the full Hessian: the
second derivatives of the loss with respect to B's parameters while the rest
stay fixed. `RestrictedOperator` gives its products from the full operator
(scatter into zeros, H v, gather), so the spectra of `spectrum.py` (top
eigenvalue, trace, density) run on it unchanged, with `size` the block's
parameter count.

`auto_blocks` groups tensors by layer, as the blockwise-spectrum studies do: a
name is cut after its first numeric component (`transformer.h.3`, `layer2.0`,
`net.4`), else at its module (`transformer.wte`, `lm_head`, `linear`).
"""

from __future__ import annotations

import torch

from .param_select import vector_mask


class RestrictedOperator:
    """v -> H_BB v for the entries `keep` (op.size,) bool of an operator's vectors."""

    def __init__(self, op, keep: torch.Tensor):
        self.op = op
        self.index = keep.nonzero()[:, 0].to(op.device)  # (k,)
        self.size = int(self.index.numel())
        self.device = op.device
        self.finite_point = op.finite_point

    @classmethod
    def of(cls, op, names) -> "RestrictedOperator":
        """The block of the parameter tensors `names` of a `hessian.HessianOperator`."""
        return cls(op, vector_mask(op.names, op.shapes, names))

    def expand(self, v: torch.Tensor) -> torch.Tensor:
        """(B, k) block vectors -> (B, op.size), zero outside the block."""
        full = torch.zeros(len(v), self.op.size, dtype=v.dtype, device=v.device)
        full[:, self.index.to(v.device)] = v
        return full

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        return self.op.matvec(self.expand(v))[:, self.index]


def block_of(name: str) -> str:
    """The layer a parameter belongs to (see the module docstring)."""
    parts = name.split(".")
    for i, p in enumerate(parts[:-1]):
        if p.isdigit():
            return ".".join(parts[: i + 1])
    return ".".join(parts[:-1]) or name


def auto_blocks(names) -> dict[str, list[str]]:
    """{block: its parameter names} in order of first appearance."""
    out: dict[str, list[str]] = {}
    for n in names:
        out.setdefault(block_of(n), []).append(n)
    return out
