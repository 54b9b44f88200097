"""The `params:` field every slice takes: which parameter tensors its directions may move (landscape/param_select.py)."""

from __future__ import annotations

from pydantic import Field, field_validator

from landscape.param_select import as_patterns

from .base import Strict


class ParamsChoice(Strict):
    params: list[str] | None = Field(
        None, min_length=1,
        description="move only these parameter tensors: globs over state_dict names (transformer.h.3.*, layer2.*), or "
        "weights (every tensor of dimension > 1, Li et al.'s convention); the directions are zero elsewhere. "
        "A single name stands for a list of one (params: weights); all (the default) moves every tensor",
    )

    @field_validator("params", mode="before")
    @classmethod
    def _one_or_all(cls, v):
        return as_patterns(v) if isinstance(v, str) else v
