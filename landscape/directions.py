"""Random directions in weight space and their normalizations (Li et al. 2018).

A direction lives in the flat layout of `params.StateLayout`. Buffers (BatchNorm
running statistics) are never moved by a random direction: their entries are 0.
"""

from __future__ import annotations

from typing import Literal

import torch

from .params import StateLayout

Normalization = Literal["filter", "layer", "weight", "none"]
Ignore = Literal["biasbn", "none"]
NORMALIZATIONS = ("filter", "layer", "weight", "none")

_EPS = 1e-10


def gaussian_direction(layout: StateLayout, generator: torch.Generator) -> torch.Tensor:
    """(P,) standard-normal entries for parameters, zeros for buffers."""
    parts = []
    for e in layout.entries:
        # Draw for every entry (buffers too) so the stream does not depend on
        # which entries are buffers; then zero the buffers.
        d = torch.randn(e.numel, generator=generator, dtype=torch.float32)
        parts.append(d if e.is_param else torch.zeros_like(d))
    return torch.cat(parts)


def normalize_direction(
    direction: torch.Tensor,
    origin: torch.Tensor,
    layout: StateLayout,
    normalization: Normalization = "filter",
    ignore: Ignore = "biasbn",
) -> torch.Tensor:
    """Rescale `direction` (P,) against the weights `origin` (P,); returns a new tensor.

    filter: each filter (slice along dim 0) of a >=2-D entry gets the norm of the
    same filter of the weights. layer: each entry gets the norm of the weights'
    entry. weight: elementwise product with the weights. none: unchanged.
    1-D entries (biases, BatchNorm affine): zeroed under ignore="biasbn", else
    set to the weights themselves as in Li et al.'s reference code.
    """
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    out = direction.clone()
    d_parts = layout.unflatten(out)
    w_parts = layout.unflatten(origin)
    for e in layout.entries:
        if not e.is_param:
            d_parts[e.name].zero_()
            continue
        d, w = d_parts[e.name], w_parts[e.name]
        if d.dim() <= 1:
            if ignore == "biasbn":
                d.zero_()
            elif normalization != "none":
                d.copy_(w)
            continue
        if normalization == "filter":
            d2, w2 = d.reshape(d.shape[0], -1), w.reshape(w.shape[0], -1)  # (F, fan_in)
            scale = w2.norm(dim=1, keepdim=True) / (d2.norm(dim=1, keepdim=True) + _EPS)
            d2.mul_(scale)
        elif normalization == "layer":
            d.mul_(w.norm() / (d.norm() + _EPS))
        elif normalization == "weight":
            d.mul_(w)
    return out


def random_directions(
    layout: StateLayout,
    origin: torch.Tensor,
    count: int,
    seed: int,
    normalization: Normalization = "filter",
    ignore: Ignore = "biasbn",
) -> torch.Tensor:
    """(count, P) seeded Gaussian directions, each normalized against `origin`."""
    g = torch.Generator().manual_seed(seed)
    return torch.stack(
        [
            normalize_direction(gaussian_direction(layout, g), origin, layout, normalization, ignore)
            for _ in range(count)
        ]
    )
