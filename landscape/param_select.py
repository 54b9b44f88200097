"""Which parameter tensors a slice or a curvature computation may move: `params: [glob, ...]`.

A pattern is an fnmatch glob over state_dict names (`transformer.h.3.*`,
`layer2.*`, `*.weight`), or the keyword `weights`: every parameter of dimension
> 1, the convention of Li et al.'s Hessian code (biases and normalization
scales left out). Only trainable parameters are ever chosen (buffers such as
BatchNorm statistics never move). Every pattern must choose something: a typo
fails with one line listing names that exist.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from math import prod
from typing import TYPE_CHECKING

from .errors import SpecError

if TYPE_CHECKING:  # torch only where a tensor is made: specs read `params:` with as_patterns, torch-free
    import torch

    from .params import StateLayout

WEIGHTS = "weights"  # keyword: every parameter tensor of dimension > 1


def as_patterns(params) -> list[str] | None:
    """A `params` value as a list of patterns: None or "all" -> None (every tensor), a bare "weights" or glob -> [it]."""
    if params is None or params == "all":
        return None
    return [params] if isinstance(params, str) else list(params)


def _matches(pattern: str, name: str, shape: tuple[int, ...]) -> bool:
    return len(shape) > 1 if pattern == WEIGHTS else fnmatchcase(name, pattern)


def select(layout: StateLayout, patterns, field: str = "params") -> list[str]:
    """Names of the parameters any of `patterns` chooses, in layout order (SpecError if a pattern chooses none)."""
    params = [e for e in layout.entries if e.is_param]
    chosen: set[str] = set()
    for pat in patterns:
        hit = {e.name for e in params if _matches(pat, e.name, e.shape)}
        if not hit:
            shown = ", ".join(e.name for e in params[:6]) + (", ..." if len(params) > 6 else "")
            what = "has no parameter of dimension > 1" if pat == WEIGHTS else f"{pat!r} matches no parameter"
            raise SpecError(f"{field}: {what}; parameter names look like {shown}")
        chosen |= hit
    return [e.name for e in params if e.name in chosen]


def entry_mask(layout: StateLayout, names) -> torch.Tensor:
    """(P,) bool over the flat state: True on the entries `names`."""
    import torch

    names = set(names)
    return torch.cat([torch.full((e.numel,), e.name in names) for e in layout.entries])


def vector_mask(names, shapes, chosen) -> torch.Tensor:
    """(sum numel,) bool over a concatenation of tensors `names` of `shapes` (a Hessian operator's order)."""
    import torch

    chosen = set(chosen)
    return torch.cat([torch.full((prod(s),), n in chosen) for n, s in zip(names, shapes)])


def moved(layout: StateLayout, directions: torch.Tensor) -> list[str]:
    """Names of the entries on which any of `directions` (D, P) is non-zero: what a slice moves."""
    import torch

    parts = torch.split(directions, [e.numel for e in layout.entries], dim=1)
    return [e.name for e, p in zip(layout.entries, parts) if bool(torch.any(p != 0))]


def keep_only(vectors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """`vectors` (..., P) with every entry outside `mask` (P,) set to 0 (a new tensor)."""
    import torch

    return torch.where(mask, vectors, torch.zeros((), dtype=vectors.dtype))
