"""The `params:` field every slice takes: which parameter tensors its directions may move (landscape/param_select.py)."""

from __future__ import annotations

from pydantic import Field

from .base import Strict


class ParamsChoice(Strict):
    params: list[str] | None = Field(
        None, min_length=1,
        description="move only these parameter tensors: globs over state_dict names (transformer.h.3.*, layer2.*), or "
        "weights (every tensor of dimension > 1, Li et al.'s convention); the directions are zero elsewhere",
    )
