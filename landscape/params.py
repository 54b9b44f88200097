"""A model's floating-point state as one flat vector, and back.

Slices are defined on this flat vector: origin + x * d1 + y * d2. Parameters
and float buffers (BatchNorm running statistics) share the layout so that a
checkpoint is reproduced exactly; distances are measured over parameters only
(see `param_mask`).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

import torch
from torch import nn


@dataclass(frozen=True)
class Entry:
    name: str
    shape: tuple[int, ...]
    is_param: bool

    @property
    def numel(self) -> int:
        return prod(self.shape)


@dataclass(frozen=True)
class StateLayout:
    """Names, shapes and kinds of a model's float state entries, in order."""

    entries: tuple[Entry, ...]

    @classmethod
    def of(cls, model: nn.Module) -> "StateLayout":
        params = {name for name, _ in model.named_parameters()}
        entries = tuple(
            Entry(name, tuple(t.shape), name in params)
            for name, t in model.state_dict().items()
            if t.is_floating_point()
        )
        return cls(entries)

    @property
    def size(self) -> int:
        return sum(e.numel for e in self.entries)

    def param_mask(self) -> torch.Tensor:
        """(P,) bool: True where the flat vector holds a trainable parameter."""
        return torch.cat([torch.full((e.numel,), e.is_param) for e in self.entries])

    def flatten(self, state: dict[str, torch.Tensor], out: torch.Tensor | None = None) -> torch.Tensor:
        """state_dict -> (P,) float32 vector (float entries only); written into `out` (P,) if given."""
        return torch.cat([state[e.name].detach().reshape(-1).float().cpu() for e in self.entries], out=out)

    def unflatten(self, vec: torch.Tensor) -> dict[str, torch.Tensor]:
        """(P,) vector -> {name: view}; views share memory with `vec`."""
        parts = torch.split(vec, [e.numel for e in self.entries])
        return {e.name: p.view(e.shape) for e, p in zip(self.entries, parts)}

    def to_json(self) -> list[list]:
        return [[e.name, list(e.shape), e.is_param] for e in self.entries]

    @classmethod
    def from_json(cls, rows: list[list]) -> "StateLayout":
        return cls(tuple(Entry(n, tuple(s), bool(p)) for n, s, p in rows))


def non_float_state(model_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Entries a slice does not move (e.g. BatchNorm's num_batches_tracked)."""
    return {k: v for k, v in model_state.items() if not v.is_floating_point()}
