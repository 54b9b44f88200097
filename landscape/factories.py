"""Picklable model factories: what an actor calls to build its model copy."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .data import import_object
from .errors import SpecError
from .models import build_model


@dataclass(frozen=True)
class ModelFactory:
    """Builds the same model anywhere: a built-in kind or a user's 'pkg.mod:fn'.

    Picklable by value (plain fields), so Ray ships it to every actor.
    """

    kind: str
    input_shape: tuple[int, ...]
    num_classes: int
    options: dict = field(default_factory=dict)
    factory: str | None = None  # import path, when kind == "import"
    seed: int = 0  # initial weights (used by training; a scan loads a checkpoint)

    def __call__(self) -> nn.Module:
        torch.manual_seed(self.seed)
        if self.kind == "import":
            model = import_object(self.factory)(**self.options)
            if not isinstance(model, nn.Module):
                raise SpecError(f"model.factory {self.factory!r} returned {type(model).__name__}, not an nn.Module")
            return model
        try:
            return build_model(self.kind, self.input_shape, self.num_classes, **self.options)
        except ValueError as e:
            raise SpecError(f"model: {e}") from e
