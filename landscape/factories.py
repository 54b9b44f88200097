"""Picklable model factories: what an actor calls to build its model copy."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .adapters import with_logits
from .data import import_object
from .errors import SpecError
from .user_calls import call_factory, first_line


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
            fn = import_object(self.factory, SpecError, "model.factory")
            model = call_factory(fn, self.options, f"model.factory {self.factory!r}", SpecError, "an nn.Module", "model.options")
            if not isinstance(model, nn.Module):
                raise SpecError(f"model.factory {self.factory!r} returned {type(model).__name__}, not an nn.Module")
            return with_logits(model)  # e.g. transformers' outputs: their logits
        if self.kind == "hf_causal_lm":
            from .lm import build_causal_lm

            return with_logits(build_causal_lm(vocab=self.num_classes, **self.options))
        from .models import build_model

        options = dict(self.options)
        if self.kind == "torchvision" and "num_classes" in options:  # torchvision's keyword: build_model calls it classes
            if "classes" in options:
                raise SpecError("model.options: give classes or num_classes, not both")
            options["classes"] = options.pop("num_classes")
        try:
            model = build_model(self.kind, self.input_shape, self.num_classes, **options)
        except (ValueError, TypeError) as e:
            raise SpecError(f"model.options: {first_line(e)}") from None
        return with_logits(model) if self.kind == "torchvision" else model
